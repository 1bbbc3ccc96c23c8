"""What every benchmark here shares: machine description, process-tree memory, and its docs section."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import threading
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.05


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def tree_rss(proc: psutil.Process, include_root: bool = True) -> int:
    """Summed RSS of a process (optionally) and all its descendants; one that vanishes meanwhile counts 0."""
    try:
        members = [proc, *proc.children(recursive=True)] if include_root else proc.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for member in members:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


class TreeSampler(threading.Thread):
    """Samples a process tree's RSS in the background: wait4 alone misses workers running side by side."""

    def __init__(self, pid: int, include_root: bool = True) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.include_root = include_root
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, tree_rss(self.proc, self.include_root))
            self.stop.wait(SAMPLE_SECONDS)


def replace_section(path: Path, title: str, section: str) -> None:
    """Swap the section headed `title` (up to the next `## ` heading) for `section`, or append it.

    Several benchmarks write sections of the same file, so it is re-read right before the write, every
    byte outside the section is kept, and the file is replaced atomically.
    """
    text = path.read_bytes().decode("utf-8") if path.exists() else "# Benchmarks\n"
    start = re.search(rf"^{re.escape(title)}[ \t]*\r?$", text, flags=re.M)
    if start is None:
        new = text + ("" if text.endswith("\n") else "\n") + "\n" + section
    else:
        following = re.compile(r"^## ", flags=re.M).search(text, start.end())
        end = following.start() if following else len(text)
        new = text[:start.start()] + section + ("\n" if following else "") + text[end:]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(new.encode("utf-8"))
    os.replace(tmp, path)
