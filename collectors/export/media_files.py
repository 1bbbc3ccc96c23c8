"""Read media files referenced by an export, inside the export folder only, into memory.

An export is untrusted input: a path may try to escape the folder (`../`, an absolute path, a
symlink that points outside, a NUL byte). Such media is recorded as skipped with a reason and is
never opened. Bytes are returned to the caller for hashing and never written anywhere.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

# Telegram Desktop writes these instead of a path when it left the file out.
PLACEHOLDER_PREFIX = "("


@dataclass(frozen=True)
class MediaRead:
    """Either `data` (the bytes, in memory) or a `status` of skipped/failed with a `reason`."""

    data: bytes | None
    status: str
    reason: str | None = None


def _skip(reason: str) -> MediaRead:
    return MediaRead(None, "skipped", reason)


def check_relative(ref: str) -> str | None:
    """Why `ref` must not be followed, or None when it is a plain relative path."""
    if "\x00" in ref:
        return "path contains a NUL byte"
    if ref.startswith(("/", "\\")) or PureWindowsPath(ref).drive or PurePosixPath(ref).is_absolute():
        return "absolute path outside the export folder"
    parts = ref.replace("\\", "/").split("/")
    if any(part == ".." for part in parts):
        return "path escapes the export folder (..)"
    return None


def read_media(export_dir: Path, ref: str, max_bytes: int) -> MediaRead:
    """Read `ref` (relative to `export_dir`) into memory, refusing anything outside the folder."""
    if ref.startswith(PLACEHOLDER_PREFIX):
        return _skip(f"not included in the export: {ref}")
    problem = check_relative(ref)
    if problem:
        return _skip(problem)
    root = export_dir.resolve()
    candidate = root / ref
    try:
        real = candidate.resolve(strict=True)
    except FileNotFoundError:
        return _skip("file missing from the export folder")
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop
        return MediaRead(None, "failed", f"cannot resolve path: {exc.__class__.__name__}")
    if not real.is_relative_to(root):
        return _skip("path resolves outside the export folder (symlink)")
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        return MediaRead(None, "failed", f"cannot open: {exc.strerror}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return _skip("not a regular file")
        if info.st_size > max_bytes:
            return _skip(f"file larger than import.max_media_bytes ({info.st_size} > {max_bytes})")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        return MediaRead(None, "failed", f"read error: {exc.strerror}")
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        return _skip(f"file larger than import.max_media_bytes ({max_bytes})")
    return MediaRead(data, "ok")
