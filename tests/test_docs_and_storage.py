"""The generated dataset docs stay current; the storage layer merges, stages and recovers as promised."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from storage import docgen
from storage.merge import merge_rows
from storage.schemas import CHANNELS, MESSAGES
from storage.store import JOURNAL, Store

REPO = Path(__file__).resolve().parents[1]


def test_datasets_doc_is_generated_from_the_schema_code() -> None:
    committed = (REPO / "docs" / "datasets.md").read_text(encoding="utf-8")
    assert committed == docgen.render(), "docs/datasets.md is stale: run `make docs`"


def test_every_column_is_documented() -> None:
    for spec in docgen.ALL_DATASETS:
        for field in spec.schema:
            assert (field.metadata or {}).get(b"doc"), f"{spec.name}.{field.name} has no description"


def channel_rows(*rows: tuple[int, str, str]) -> pa.Table:
    """(channel_id, title, run_id) rows for one snapshot day."""
    return pa.Table.from_pylist([
        {"channel_id": cid, "snapshot_date": dt.date(2026, 1, 1), "title": title, "run_id": run,
         "snapshot_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)} for cid, title, run in rows], schema=CHANNELS.schema)


def test_merge_keeps_unchanged_rows_replaces_changed_and_adds_new() -> None:
    stored = channel_rows((1, "one", "run-a"), (2, "two", "run-a"))
    merged, changed = merge_rows(CHANNELS, stored, channel_rows((1, "one", "run-b"), (2, "TWO", "run-b"),
                                                                (3, "three", "run-b")))
    assert changed == 2
    assert [(r["channel_id"], r["title"], r["run_id"]) for r in merged.to_pylist()] == [
        (1, "one", "run-a"), (2, "TWO", "run-b"), (3, "three", "run-b")]
    assert merge_rows(CHANNELS, merged, channel_rows((1, "one", "run-c"))) == (None, 0)


def test_merge_keeps_the_last_of_duplicate_keys_in_one_input() -> None:
    merged, changed = merge_rows(CHANNELS, None, channel_rows((5, "old", "r"), (4, "x", "r"), (5, "new", "r")))
    assert [(r["channel_id"], r["title"]) for r in merged.to_pylist()] == [(4, "x"), (5, "new")]
    assert changed == 2


def test_uncommitted_staging_is_dropped_and_journaled_commit_rolled_forward(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    abandoned = store.begin("run-abandoned")
    abandoned.stage(CHANNELS, "channels/month=2026-01/c1.parquet", channel_rows((1, "one", "r")))
    committing = store.begin("run-committing")
    committing.stage(CHANNELS, "channels/month=2026-01/c2.parquet", channel_rows((2, "two", "r")))
    (committing.dir / JOURNAL).write_bytes(orjson.dumps(sorted(committing.staged)))  # crashed after the journal

    assert store.recover() == 1
    assert not (tmp_path / "channels/month=2026-01/c1.parquet").exists()
    assert pq.read_table(tmp_path / "channels/month=2026-01/c2.parquet").num_rows == 1
    assert not any((tmp_path / "_staging").iterdir())


def test_files_carry_dataset_name_and_schema_version(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    txn = store.begin("run")
    txn.stage(CHANNELS, "channels/month=2026-01/c1.parquet", channel_rows((1, "one", "r")))
    txn.commit()
    metadata = pq.read_schema(tmp_path / "channels/month=2026-01/c1.parquet").metadata
    assert metadata[b"chanwatch.dataset"] == b"channels"
    assert metadata[b"chanwatch.schema_version"] == str(CHANNELS.version).encode()
    assert MESSAGES.version >= 1
