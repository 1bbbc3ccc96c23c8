"""What every benchmark here shares: machine description, process-tree memory, and its docs section."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.05

# Linux carries a parent's peak RSS into a forked child's ru_maxrss, even across exec, and the benches
# grow large. A fresh, small launcher forks and execs the command instead, so wait4's ru_maxrss is the
# command's own; it also times the command.
LAUNCHER = """
import os, sys, time
result, cmd = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
with open(result, "w") as fh:
    fh.write(f"{wall} {usage.ru_maxrss} {code}")
sys.exit(code if 0 <= code < 256 else 1)
"""


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


def clean_env() -> dict[str, str]:
    """No CHANWATCH_* overrides: the benches measure the defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CHANWATCH_")}


@dataclass(frozen=True)
class Launched:
    """What one measured process did; its stdout and stderr are in the log files given."""

    wall_s: float
    maxrss_bytes: int  # ru_maxrss from wait4, in the launcher
    sampled_bytes: int  # peak summed RSS of the process tree, sampled every 50 ms
    returncode: int

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def peak_mb(self) -> float:
        """Peak memory in MB (10^6 bytes): the larger of wait4's figure and the sampled tree."""
        return max(self.maxrss_bytes, self.sampled_bytes) / 1_000_000


def launch_measured(cmd: list[str], workdir: Path, out_log: Path, err_log: Path) -> Launched:
    """Run `cmd` in `workdir` with a clean environment, through the launcher, sampling its tree's RSS."""
    result = out_log.with_suffix(".wait4")
    result.unlink(missing_ok=True)
    with out_log.open("wb") as out, err_log.open("wb") as err:
        launcher = subprocess.Popen([sys.executable, "-I", "-S", "-c", LAUNCHER, str(result), *cmd], stdout=out,
                                    stderr=err, stdin=subprocess.DEVNULL, cwd=workdir, env=clean_env())
        sampler = TreeSampler(launcher.pid, include_root=False)
        sampler.start()
        launcher.wait()
        sampler.stop.set()
        sampler.join()
    fallback = f"nan 0 {launcher.returncode}"  # the launcher itself failed
    wall, maxrss_kb, code = (result.read_text() if result.exists() else fallback).split()
    return Launched(float(wall), int(maxrss_kb) * 1024, sampler.peak, int(code))


def measure_logged(name: str, cmd: list[str], workdir: Path) -> tuple[Launched, str, str]:
    """`launch_measured` with the output kept in `workdir/logs/<name>.*.log`; prints the command and result."""
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out_log, err_log = logs / f"{name}.stdout.log", logs / f"{name}.stderr.log"
    shown = shlex.join(cmd[:6]) + (" ..." if len(cmd) > 6 else "")  # a hasher's file list would flood the log
    print(f"  [{name}] {shown}", flush=True)
    done = launch_measured(cmd, workdir, out_log, err_log)
    print(f"  [{name}] {done.wall_s:.2f} s, peak {done.peak_mb:.0f} MB" + ("" if done.ok else
                                                                          f", exit {done.returncode}"), flush=True)
    return done, out_log.read_text(errors="replace"), err_log.read_text(errors="replace")


def dir_bytes(path: Path) -> int:
    """Bytes of every file below `path` (0 when it does not exist)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
