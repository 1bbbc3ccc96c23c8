"""Buffered, file-aware writes: rows are grouped by their target file and flushed in large batches.

This is what keeps a one-million-message import at a few dozen Parquet files and flat memory:
rows are held column-wise, turned into Arrow batches every few thousand rows, and a target file
is merged and staged once its rows are complete (inputs arrive in id order) or memory runs high.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from storage.schemas import MESSAGES, DatasetSpec
from storage.store import Transaction

BATCH_ROWS = 8192
MAX_BUFFERED_ROWS = 50_000


def month_of_micros(micros: int | None) -> str:
    """The Hive `month` partition value (UTC) of a timestamp in microseconds."""
    if micros is None:
        return "unknown"
    return dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC).strftime("%Y-%m")


def message_file(spec: DatasetSpec, channel_id: int, month: str, bucket: int) -> str:
    """Deterministic file for a message-keyed row (one per channel, month and id block): retries overwrite."""
    return f"{spec.name}/month={month}/c{channel_id}-b{bucket:05d}.parquet"


def channel_file(spec: DatasetSpec, channel_id: int, month: str) -> str:
    return f"{spec.name}/month={month}/c{channel_id}.parquet"


class _FileBuffer:
    """Rows bound for one file: dict rows are gathered column-wise, tables are kept as they come."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.columns: dict[str, list[Any]] = {name: [] for name in schema.names}
        self.batches: list[pa.RecordBatch] = []
        self.pending = 0
        self.rows = 0

    def append(self, row: Mapping[str, Any]) -> None:
        for name, values in self.columns.items():
            values.append(row.get(name))
        self.pending += 1
        self.rows += 1
        if self.pending >= BATCH_ROWS:
            self.seal()

    def extend(self, table: pa.Table) -> None:
        self.seal()
        self.batches.extend(table.cast(self.schema).to_batches())
        self.rows += table.num_rows

    def seal(self) -> None:
        if self.pending:
            self.batches.append(pa.RecordBatch.from_pydict(self.columns, schema=self.schema))
            self.columns = {name: [] for name in self.schema.names}
            self.pending = 0

    def table(self) -> pa.Table:
        self.seal()
        return pa.Table.from_batches(self.batches, schema=self.schema)


class DatasetWriter:
    """Stages rows of one dataset into a transaction, file by file.

    Merging and writing a file (Parquet encoding, zstd, fsync) runs on a background thread, so it
    overlaps with parsing the next rows; at most one file is in flight, which bounds memory, and
    files are staged in order, so a file flushed twice is merged onto its own first version.

    `transform` rewrites each file's rows just before they are staged. `messages` rows must pass
    through the privacy policy (`processing.privacy.MessagePolicy.apply`, built by
    `chanwatch.steps.retention.message_policy`), so every writer of messages names it explicitly.
    """

    def __init__(self, txn: Transaction, spec: DatasetSpec,
                 transform: Callable[[pa.Table], pa.Table] | None = None) -> None:
        if spec.name == MESSAGES.name and transform is None:
            raise ValueError("messages rows are written through the privacy policy: pass "
                             "transform=message_policy(...).apply")
        self.txn = txn
        self.spec = spec
        self.transform = transform
        self.buffers: dict[str, _FileBuffer] = {}
        self.current: str | None = None
        self.rows_changed = 0
        self.files: set[str] = set()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"stage-{spec.name}")
        self._in_flight: Future[int] | None = None

    def _buffer(self, rel_path: str) -> _FileBuffer:
        buffer = self.buffers.get(rel_path)
        if buffer is None:
            buffer = self.buffers[rel_path] = _FileBuffer(self.spec.schema)
        return buffer

    def add(self, rel_path: str, row: Mapping[str, Any]) -> None:
        self._buffer(rel_path).append(row)
        self._maybe_flush(rel_path)

    def add_table(self, rel_path: str, rows: pa.Table) -> None:
        self._buffer(rel_path).extend(rows)
        self._maybe_flush(rel_path)

    def _maybe_flush(self, rel_path: str) -> None:
        if rel_path != self.current:
            self.current = rel_path
            if sum(b.rows for b in self.buffers.values()) > MAX_BUFFERED_ROWS:
                self.flush(keep=rel_path)

    def flush(self, keep: str | None = None) -> None:
        """Stage every buffered file except `keep` (the one still being filled)."""
        for rel in [r for r in self.buffers if r != keep]:
            table = self.buffers.pop(rel).table()
            self._wait()
            self._in_flight = self._executor.submit(self._stage, rel, table)
            self.files.add(rel)

    def _stage(self, rel: str, table: pa.Table) -> int:
        if self.transform is not None:
            table = self.transform(table)
        return self.txn.stage(self.spec, rel, table)

    def _wait(self) -> None:
        if self._in_flight is not None:
            future, self._in_flight = self._in_flight, None
            self.rows_changed += future.result()

    def abandon(self) -> None:
        """Drop what is buffered and let the in-flight file finish (the run is failing)."""
        self.buffers.clear()
        try:
            self._wait()
        except Exception:  # the run's own error is the one to report
            pass
        finally:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Stage everything still buffered and wait for it; errors from the thread surface here."""
        try:
            self.flush()
            self._wait()
        finally:
            self._executor.shutdown(wait=True, cancel_futures=True)
