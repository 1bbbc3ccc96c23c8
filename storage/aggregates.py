"""Where `chanwatch aggregate` keeps its outputs and what it remembers about its inputs.

Outputs (for researchers): `aggregates/channel_daily/month=YYYY-MM/part.parquet`,
`aggregates/matches_daily/month=YYYY-MM/part.parquet` and `aggregates/forward_edges/edges.parquet`.

State (under `_state/aggregates/`):
- `inputs.parquet`: one row per (input file, channel, day) with the file's fingerprint (size, mtime_ns
  and inode, read from the directory, never from the content) and the digest of that file's rows for
  that channel-day. A file whose fingerprint is unchanged is not read again; a changed one is re-digested,
  and only channel-days whose summed digest moved are recomputed. One file, replaced atomically, written
  last: a crash before it leaves the previous state, and the next run redoes the work, never skips it.
- `forward_edges_daily/month=YYYY-MM/part.parquet`: forward counts per (target channel, day, source),
  from which the single small edges file is rebuilt, so a new day costs that day, not a rescan.
"""

from __future__ import annotations

import pyarrow as pa

from storage.files import fsync_dir, write_parquet_atomic
from storage.objectstore import (
    StoragePath,
    delete_object,
    list_with_identity,
    parquet_rows,
    read_parquet,
    read_parquet_schema,
)
from storage.schemas import FORWARD_EDGES, MATCHES, MEDIA, MESSAGES, UTC_TS, DatasetSpec
from storage.store import Store, _fault_point

INPUTS: tuple[DatasetSpec, ...] = (MESSAGES, MEDIA, MATCHES)
STATE_DIR = "aggregates"
FINGERPRINT_SCHEMA = pa.schema([("dataset", pa.string()), ("path", pa.string()), ("size", pa.int64()),
                                ("mtime_ns", pa.int64()), ("inode", pa.int64())])
STATE_SCHEMA = pa.schema([*FINGERPRINT_SCHEMA, ("channel_id", pa.int64()), ("day", pa.date32()),
                          ("rows", pa.int64()), ("digest", pa.uint64())])
STATE_SORT = [("dataset", "ascending"), ("path", "ascending"), ("channel_id", "ascending"), ("day", "ascending")]
EDGE_PARTIALS_SCHEMA = pa.schema([
    ("target_channel_id", pa.int64()), ("day", pa.date32()), ("source_key", pa.string()),
    ("source_channel_id", pa.int64()), ("source_name", pa.string()), ("name_at", UTC_TS), ("forwards", pa.int64()),
    ("forwards_with_media", pa.int64()), ("forwards_matched", pa.int64()), ("first_date", UTC_TS),
    ("last_date", UTC_TS)])
EDGE_PARTIALS_KEY = ("target_channel_id", "day", "source_key")
META_KEY = b"chanwatch.aggregates"


def input_fingerprints(store: Store) -> pa.Table:
    """(dataset, path, size, mtime_ns, inode) of every input file, from a listing: no file is opened.

    Writers replace files by rename locally (storage.files), so a rewritten file also has a new inode:
    two versions written within the same clock tick still differ. On object storage the "inode" is
    derived from the ETag, which every PUT changes. (A copy of the whole root has new inodes too: its
    first run re-reads every file once, finds the same digests, and rewrites nothing.)
    """
    rows: dict[str, list] = {name: [] for name in FINGERPRINT_SCHEMA.names}
    prefix = len(str(store.root)) + 1
    for spec in INPUTS:
        found = [(path[prefix:], size, mtime_ns, identity)
                 for path, size, mtime_ns, identity in list_with_identity(store.dataset_dir(spec), ".parquet")]
        for rel, size, mtime_ns, inode in sorted(found):
            rows["dataset"].append(spec.name)
            rows["path"].append(rel)
            rows["size"].append(size)
            rows["mtime_ns"].append(mtime_ns)
            rows["inode"].append(inode)
    return pa.table(rows, schema=FINGERPRINT_SCHEMA)


def state_path(store: Store) -> StoragePath:
    return store.state_path(STATE_DIR, "inputs.parquet")


def read_state(store: Store) -> tuple[pa.Table | None, str | None]:
    """The stored state and the algorithm tag it was built with; (None, None) when absent or unreadable."""
    table = read_table(state_path(store), STATE_SCHEMA)
    if table is None:
        return None, None
    metadata = read_parquet_schema(state_path(store)).metadata or {}
    tag = metadata.get(META_KEY)
    return table, tag.decode() if tag else None


def write_state(store: Store, table: pa.Table, tag: str) -> None:
    """Commit the state. Called only after every output it covers is durably written."""
    _fault_point("aggregate_state")
    table = table.cast(STATE_SCHEMA).replace_schema_metadata({META_KEY: tag.encode()})
    write_parquet_atomic(state_path(store), table)


def month_path(store: Store, spec: DatasetSpec, month: str) -> StoragePath:
    return store.dataset_dir(spec) / f"month={month}" / "part.parquet"


def edges_path(store: Store) -> StoragePath:
    return store.dataset_dir(FORWARD_EDGES) / "edges.parquet"


def partials_path(store: Store, month: str) -> StoragePath:
    return store.state_path(STATE_DIR, "forward_edges_daily", f"month={month}", "part.parquet")


def partials_dir(store: Store) -> StoragePath:
    return store.state_path(STATE_DIR, "forward_edges_daily")


def existing_months(base: StoragePath) -> set[str]:
    """Months that have a `month=YYYY-MM/part.parquet` under `base`."""
    if not base.exists():
        return set()
    return {p.parent.name.removeprefix("month=") for p in base.glob("month=*/part.parquet")}


def row_count(path: StoragePath) -> int:
    """Rows in a Parquet file, from its footer (0 when it is missing or unreadable)."""
    try:
        return parquet_rows(path)
    except (OSError, pa.ArrowException):
        return 0


def read_table(path: StoragePath, schema: pa.Schema) -> pa.Table | None:
    """The file's rows in `schema`, or None when it is missing or cannot be read (it is then rebuilt)."""
    if not path.exists():
        return None
    try:
        return read_parquet(path, schema=schema)
    except (OSError, pa.ArrowException):
        return None


def write_table(path: StoragePath, table: pa.Table, spec: DatasetSpec | None = None) -> None:
    """Replace one output or partial file atomically (a test hook can kill the process right after)."""
    if spec is not None:
        table = table.cast(spec.schema).replace_schema_metadata({
            "chanwatch.dataset": spec.name, "chanwatch.schema_version": str(spec.version)})
    write_parquet_atomic(path, table)
    _fault_point("aggregate")


def remove_file(path: StoragePath) -> bool:
    """Remove a file that no longer has rows; durable. Returns whether there was one."""
    if not path.exists():
        return False
    delete_object(path)
    fsync_dir(path.parent)
    _fault_point("aggregate")
    return True
