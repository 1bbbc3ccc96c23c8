"""Durable, atomic file writes on the local storage root.

A reader must never see a half-written file, and a checkpoint must never be durable before the
data it covers. So every write goes to a temporary name in the same directory, is fsynced, and
is renamed into place; the directory is fsynced after the rename.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "row_group_size": 128 * 1024}


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to `final`; on success it replaces `final` atomically."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        fsync_dir(final.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(final: Path, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def write_parquet_atomic(final: Path, table: pa.Table) -> None:
    with atomic_path(final) as tmp:
        pq.write_table(table, tmp, **PARQUET_OPTIONS)


def move_durably(src: Path, dst: Path) -> None:
    """Rename `src` over `dst` (atomic on one filesystem) and make the rename durable."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    fsync_dir(dst.parent)
