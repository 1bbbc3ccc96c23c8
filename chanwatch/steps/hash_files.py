"""The `hash` step: hash files on disk, one JSON-ready dict per file, on a pool of worker processes.

Files are read into memory by the worker that hashes them; nothing is written. A broken or hostile
file gives a line with `error` and never stops the batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from processing.hashing import DecodeLimits, hash_media

OUTPUT_FIELDS = ("path", "media_kind", "pdq", "pdq_quality", "phash", "dhash", "md5", "sha256", "frames", "error")


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, folders recursively (sorted); a missing path is kept so it reports an error."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()))
        else:
            out.append(path)
    return out


def hash_file(path: str, limits: DecodeLimits, max_bytes: int) -> dict[str, Any]:
    """Hash one file; every outcome is a dict with the same keys."""
    line: dict[str, Any] = dict.fromkeys(OUTPUT_FIELDS)
    line["path"] = path
    try:
        size = os.stat(path).st_size
        if size > max_bytes:
            line.update(status="skipped", error=f"skipped: file larger than {max_bytes} bytes")
            return line
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        line.update(status="failed", error=f"failed: cannot read: {exc.strerror}")
        return line
    hashes = hash_media(data, limits)
    line.update(media_kind=hashes.content_kind, pdq=hashes.pdq, pdq_quality=hashes.pdq_quality, phash=hashes.phash,
                dhash=hashes.dhash, md5=hashes.md5, sha256=hashes.sha256, frames=hashes.frames, status=hashes.status,
                duration_s=hashes.duration_s, width=hashes.width, height=hashes.height)
    if hashes.status != "hashed":
        line["error"] = f"{hashes.status}: {hashes.reason}"
    elif hashes.reason:
        line["note"] = hashes.reason
    return line


def _hash_chunk(paths: list[str], limits: DecodeLimits, max_bytes: int) -> list[dict[str, Any]]:
    return [hash_file(p, limits, max_bytes) for p in paths]


def hash_files(paths: list[Path], limits: DecodeLimits, max_bytes: int, workers: int,
               on_done: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
    """Yield results in input order. One worker hashes in this process; more use a process pool."""
    names = [str(p) for p in paths]
    if workers <= 1 or len(names) <= 1:
        for name in names:
            yield hash_file(name, limits, max_bytes)
            if on_done:
                on_done(1)
        return
    chunk = max(1, min(16, len(names) // (workers * 4)))
    chunks = [names[i:i + chunk] for i in range(0, len(names), chunk)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for results in pool.map(_hash_chunk, chunks, [limits] * len(chunks), [max_bytes] * len(chunks)):
            yield from results
            if on_done:
                on_done(len(results))
