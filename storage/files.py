"""Durable, atomic file writes on the storage root (local disk or object storage).

A reader must never see a half-written file, and a checkpoint must never be durable before the
data it covers. Locally every write goes to a temporary name in the same directory, is fsynced,
and is renamed into place; the directory is fsynced after the rename. On object storage a PUT is
atomic and durable when it returns, so the object is written in place (storage.objectstore).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from storage.objectstore import StoragePath, is_local

PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "row_group_size": 128 * 1024}


def fsync_dir(path: StoragePath) -> None:
    if not is_local(path):
        return  # object storage has no directories to sync
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to local `final`; on success it replaces `final` atomically."""
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


def write_bytes_atomic(final: StoragePath, data: bytes) -> None:
    if not is_local(final):
        final.write_bytes(data)
        return
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def write_parquet_atomic(final: StoragePath, table: pa.Table) -> None:
    if not is_local(final):
        buffer = pa.BufferOutputStream()  # built whole first: a failed write must not upload a part
        pq.write_table(table, buffer, **PARQUET_OPTIONS)
        final.write_bytes(buffer.getvalue().to_pybytes())
        return
    with atomic_path(final) as tmp:
        pq.write_table(table, tmp, **PARQUET_OPTIONS)


def move_durably(src: Path, dst: Path) -> None:
    """Rename `src` over `dst` (atomic on one filesystem) and make the rename durable."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    fsync_dir(dst.parent)
