"""The storage root: Hive-partitioned Parquet datasets, staged writes, and their atomic commit.

A run stages every file it changes under `_staging/<run_id>/` (invisible to readers, who read
`<root>/<dataset>/`). Commit writes a journal listing the staged files, then renames each into
place. A crash before the journal leaves the live data untouched (the staging is dropped on the
next start); a crash after it is rolled forward on the next start. So an import that fails half
way (a truncated export, say) never becomes visible, and one killed during commit is completed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
import pyarrow as pa

from processing.errors import BadInputError
from storage.files import fsync_dir, write_bytes_atomic, write_parquet_atomic
from storage.merge import merge_rows
from storage.objectstore import StoragePath, is_local, move, open_root, read_parquet, remove_tree
from storage.schemas import DatasetSpec
from storage.writer_lease import WriterBusy, WriterLease

log = logging.getLogger(__name__)

STAGING = "_staging"
STATE = "_state"
JOURNAL = "COMMIT.json"
WAIT_ENV = "CHANWATCH_WRITER_WAIT_SECONDS"
DEFAULT_WAIT_SECONDS = 600.0


def writer_wait_seconds() -> float:
    """How long a writer waits for another to finish before it gives up ($CHANWATCH_WRITER_WAIT_SECONDS).

    Airflow runs several collect tasks (one per channel, over several accounts) at once: they read
    Telegram in parallel and take turns at the lock only while they commit, so they wait, not fail.
    """
    raw = os.environ.get(WAIT_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_WAIT_SECONDS
    try:
        return max(float(raw), 0.0)
    except ValueError:
        raise BadInputError(f"{WAIT_ENV}={raw!r}: not a number of seconds") from None


_FAULT_COUNTS: dict[str, int] = {}


def _fault_point(kind: str) -> None:
    """Test hook: `CHANWATCH_FAULT_INJECT=commit:2` SIGKILLs this process after its 2nd committed file.

    Counts run over the whole process (a collector commits many transactions), so the crash-recovery
    tests can kill the writer at an exact point; it does nothing unless that variable is set.
    """
    wanted = os.environ.get("CHANWATCH_FAULT_INJECT")
    if not wanted:
        return
    _FAULT_COUNTS[kind] = _FAULT_COUNTS.get(kind, 0) + 1
    if wanted == f"{kind}:{_FAULT_COUNTS[kind]}":
        os.kill(os.getpid(), signal.SIGKILL)


class Store:
    """All persistent state under one storage root."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.root: StoragePath = open_root(uri)
        self._lease: WriterLease | None = None

    @property
    def is_local(self) -> bool:
        return is_local(self.root)

    def dataset_dir(self, spec: DatasetSpec) -> StoragePath:
        return self.root / spec.name

    def state_path(self, *parts: str) -> StoragePath:
        return self.root.joinpath(STATE, *parts)

    def list_files(self, spec: DatasetSpec) -> list[StoragePath]:
        base = self.dataset_dir(spec)
        return sorted(p for p in base.rglob("*.parquet") if not p.name.startswith(".")) if base.exists() \
            else []

    def read(self, spec: DatasetSpec) -> pa.Table:
        """Read a whole dataset (small datasets and tests; researchers use DuckDB on the files)."""
        files = self.list_files(spec)
        if not files:
            return spec.empty_table()
        return pa.concat_tables(read_parquet(f, schema=spec.schema) for f in files)

    @contextmanager
    def writer_lock(self, wait: float | None = None) -> Iterator[None]:
        """One writer per storage root at a time: waits up to `wait` seconds (default
        `writer_wait_seconds()`) for the current writer, then recovers what a crashed writer left behind."""
        deadline = time.monotonic() + (writer_wait_seconds() if wait is None else wait)
        waited_from: float | None = None
        while True:
            try:
                release = self._take_writer_lock()
                break
            except WriterBusy as busy:
                now = time.monotonic()
                if now >= deadline:
                    if waited_from is not None:
                        raise WriterBusy(f"{busy} (waited {now - waited_from:.0f} s; {WAIT_ENV} sets "
                                         "how long)") from None
                    raise
                if waited_from is None:
                    waited_from = now
                    log.info("event=store.writer_wait root=%s reason=%r", self.uri, str(busy))
                time.sleep(min(0.2 if self.is_local else 1.0, deadline - now))
        if waited_from is not None:
            log.info("event=store.writer_acquired root=%s waited_s=%.1f", self.uri, time.monotonic() - waited_from)
        try:
            self.recover()
            yield
        finally:
            release()

    def _take_writer_lock(self) -> Callable[[], None]:
        """Take the lock once, without waiting (WriterBusy if held); returns its release."""
        if not self.is_local:
            lease = WriterLease(self.state_path("writer.lease"))
            lease.acquire(self.uri)
            self._lease = lease

            def release_lease() -> None:
                lease.release()
                self._lease = None
            return release_lease
        lock_path = self.state_path("writer.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+b")  # noqa: SIM115 - closed by the returned release
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise WriterBusy(f"{self.uri}: another chanwatch writer is running on this storage root") from None

        def release_flock() -> None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
        return release_flock

    def recover(self) -> int:
        """Roll forward journaled commits and drop abandoned staging; returns how many rolled forward."""
        staging = self.root / STAGING
        if not staging.exists():
            return 0
        rolled = 0
        for run_dir in sorted(p for p in staging.iterdir() if p.is_dir()):
            journal = run_dir / JOURNAL
            if journal.exists():
                Transaction(self, run_dir.name, _existing=True).apply_journal()
                rolled += 1
            remove_tree(run_dir)
        return rolled

    def renew_lease(self) -> None:
        """Called at each commit: an object-store writer's lease is pushed out while it makes progress."""
        if self._lease is not None:
            self._lease.renew()

    def begin(self, run_id: str) -> Transaction:
        return Transaction(self, run_id)


class Transaction:
    """Files staged by one run, committed together."""

    def __init__(self, store: Store, run_id: str, *, _existing: bool = False) -> None:
        self.store = store
        self.run_id = run_id
        self.dir = store.root / STAGING / run_id
        if not _existing:
            if self.dir.exists():
                remove_tree(self.dir)
            self.dir.mkdir(parents=True)
        self.staged: dict[str, int] = {}  # relative path -> rows new or changed

    def _staged_path(self, rel: str) -> StoragePath:
        return self.dir / "files" / rel

    def stage(self, spec: DatasetSpec, rel: str, rows: pa.Table) -> int:
        """Merge `rows` into the file at `rel` (relative to the root); returns rows new or changed."""
        staged = self._staged_path(rel)
        base_path = staged if staged.exists() else self.store.root / rel
        stored = read_parquet(base_path, schema=spec.schema) if base_path.exists() else None
        merged, changed = merge_rows(spec, stored, rows)
        if merged is None:
            return 0
        merged = merged.replace_schema_metadata({
            "chanwatch.dataset": spec.name, "chanwatch.schema_version": str(spec.version)})
        write_parquet_atomic(staged, merged)
        self.staged[rel] = self.staged.get(rel, 0) + changed
        _fault_point("stage")
        return changed

    def commit(self) -> None:
        """Make every staged file visible. Durable before return; safe to crash in the middle."""
        if self.staged:
            self.store.renew_lease()
            write_bytes_atomic(self.dir / JOURNAL, orjson.dumps(sorted(self.staged)))
            self.apply_journal()
        self.abort()

    def apply_journal(self) -> None:
        for rel in orjson.loads((self.dir / JOURNAL).read_bytes()):
            src = self._staged_path(rel)
            if src.exists():
                move(src, self.store.root / rel)
                _fault_point("commit")

    def abort(self) -> None:
        remove_tree(self.dir)
        if self.store.is_local and self.dir.parent.exists() and not any(self.dir.parent.iterdir()):
            os.rmdir(self.dir.parent)
            fsync_dir(self.store.root)
