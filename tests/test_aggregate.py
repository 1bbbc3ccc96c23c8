"""`aggregate`: exact numbers against an independent pandas computation, incremental recomputation of only
the days whose inputs changed, no rewrite when nothing changed, and a crash between data and state."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chanwatch.settings import load_settings
from chanwatch.steps.aggregate import AggregateResult, run_aggregate
from storage.files import write_parquet_atomic
from storage.schemas import BUCKET_SIZE, CHANNEL_DAILY, FORWARD_EDGES, MATCHES, MATCHES_DAILY, MEDIA, MESSAGES
from storage.writer import message_file
from tests.conftest import REPO

A, B = 1_000_000_101, 1_000_000_202
SOURCE = 1_555_000_001  # a channel that A and B forward from


def ts(month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=dt.UTC)


class World:
    """Input rows held in memory and written in the datasets' layout; a file is written only when it changed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows: dict[str, dict[tuple, dict[str, Any]]] = {MESSAGES.name: {}, MEDIA.name: {}, MATCHES.name: {}}

    def message(self, channel: int, message_id: int, date: dt.datetime, **values: Any) -> dict[str, Any]:
        row = {"channel_id": channel, "message_id": message_id, "date": date, "message_type": "message",
               "deleted": False, "text": f"post {message_id}", "source": "telegram", **values}
        self.rows[MESSAGES.name][(channel, message_id)] = row
        return row

    def media(self, channel: int, message_id: int, index: int = 0, status: str = "hashed") -> None:
        date = self.rows[MESSAGES.name][(channel, message_id)]["date"]
        self.rows[MEDIA.name][(channel, message_id, index)] = {
            "channel_id": channel, "message_id": message_id, "media_index": index, "date": date,
            "media_kind": "photo", "status": status}

    def match(self, channel: int, message_id: int, index: int, list_name: str, category: str | None,
              signal_type: str = "pdq", entry: str = "e1") -> None:
        date = self.rows[MESSAGES.name][(channel, message_id)]["date"]
        match_id = hashlib.sha256(f"{channel}:{message_id}:{index}:{list_name}:{signal_type}:{entry}".encode()
                                  ).hexdigest()[:32]
        self.rows[MATCHES.name][(channel, message_id, index, match_id)] = {
            "match_id": match_id, "channel_id": channel, "message_id": message_id, "media_index": index,
            "date": date, "signal_type": signal_type, "distance": 0, "list_name": list_name, "entry_id": entry,
            "category": category}

    def files(self) -> dict[str, pa.Table]:
        specs = {s.name: s for s in (MESSAGES, MEDIA, MATCHES)}
        grouped: dict[str, tuple[Any, list[dict]]] = {}
        for name, rows in self.rows.items():
            for key in sorted(rows):
                row = rows[key]
                rel = message_file(specs[name], row["channel_id"], row["date"].strftime("%Y-%m"),
                                   row["message_id"] // BUCKET_SIZE)
                grouped.setdefault(rel, (specs[name], []))[1].append(row)
        return {rel: pa.Table.from_pylist(rows, schema=spec.schema) for rel, (spec, rows) in grouped.items()}

    def flush(self) -> list[str]:
        """Write changed files (atomically, as the store does), drop files without rows; returns what changed."""
        wanted = self.files()
        changed = []
        for rel, table in wanted.items():
            path = self.root / rel
            if path.exists() and pq.read_table(path).equals(table):
                continue
            write_parquet_atomic(path, table)
            changed.append(rel)
        for dataset in self.rows:
            for path in (self.root / dataset).rglob("*.parquet") if (self.root / dataset).exists() else []:
                if path.relative_to(self.root).as_posix() not in wanted:
                    path.unlink()
                    changed.append(path.relative_to(self.root).as_posix())
        return changed

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The inputs as pandas frames, straight from the rows in memory (not from what aggregate reads)."""
        out = []
        for spec in (MESSAGES, MEDIA, MATCHES):
            table = pa.Table.from_pylist(list(self.rows[spec.name].values()), schema=spec.schema)
            out.append(table.to_pandas())
        return out[0], out[1], out[2]


def sample_world(root: Path) -> World:
    """Two channels over three months: service, deleted and forwarded posts, counters, reactions, albums,
    media of every status, matches from two lists (one without a category), a second id bucket."""
    w = World(root)
    like = [{"reaction": "👍", "count": 3}, {"reaction": "❤", "count": 2}]
    w.message(A, 1, ts(1, 5, 9), message_type="service", service_action="channel_create")
    w.message(A, 2, ts(1, 5, 10), views=100, forwards=2, replies=1, reactions=like, media_kind="photo")
    w.message(A, 3, ts(1, 5, 23, 59), views=50, fwd_from_channel_id=SOURCE, fwd_from_name="Source One",
              media_kind="photo")
    w.message(A, 4, ts(1, 6, 0, 1), deleted=True, fwd_from_name="Hidden Forwarder")
    w.message(A, 5, ts(1, 20), fwd_from_channel_id=SOURCE, fwd_from_name="Source One (renamed)", media_kind="video")
    w.message(A, BUCKET_SIZE + 1, ts(1, 20, 18), views=7, reactions=[{"reaction": "🔥", "count": 10}])
    w.message(A, BUCKET_SIZE + 2, ts(2, 10), views=9, media_kind="photo")
    w.message(A, BUCKET_SIZE + 3, ts(2, 11), fwd_from_channel_id=B, media_kind="photo")
    w.message(B, 1, ts(1, 5, 8), reactions=[], media_kind="photo")
    w.message(B, 2, ts(2, 10, 1), fwd_from_channel_id=SOURCE, fwd_from_name="Source One", media_kind="photo")
    w.message(B, 3, ts(3, 1), deleted=True, views=4)
    w.message(B, 4, ts(3, 2), fwd_from_name="Hidden Forwarder")
    w.media(A, 2)
    w.media(A, 3)
    w.media(A, 3, 1, status="skipped")
    w.media(A, 5, status="failed")
    w.media(A, BUCKET_SIZE + 2)
    w.media(A, BUCKET_SIZE + 3)
    w.media(B, 1)
    w.media(B, 2)
    w.match(A, 3, 0, "hotline", "ncii")
    w.match(A, 3, 0, "hotline", "ncii", "md5", "e2")
    w.match(A, 2, 0, "partner", None)
    w.match(B, 2, 0, "hotline", "ncii")
    w.match(A, BUCKET_SIZE + 3, 0, "hotline", "ncii")
    w.flush()
    return w


def expected(w: World) -> dict[str, list[dict]]:
    """The three aggregates computed with pandas from the rows in memory."""
    msg, med, mat = w.frames()
    return expected_from_frames(msg, med, mat)


def expected_from_frames(msg: pd.DataFrame, med: pd.DataFrame, mat: pd.DataFrame) -> dict[str, list[dict]]:
    msg = msg[msg["date"].notna() & (msg["message_type"].fillna("message") != "service")].copy()
    for frame in (msg, med, mat):
        frame["day"] = frame["date"].dt.tz_convert("UTC").dt.date
    msg["is_fwd"] = msg["fwd_from_channel_id"].notna() | msg["fwd_from_name"].notna()
    msg["reaction_sum"] = msg["reactions"].map(lambda rs: 0 if rs is None else int(sum(r["count"] for r in rs)))
    keys = ["channel_id", "day"]
    m = msg.groupby(keys).agg(messages=("message_id", "size"), messages_deleted=("deleted", "sum"),
                              forwarded_messages=("is_fwd", "sum"),
                              views=("views", lambda s: s.sum(min_count=1)),
                              forwards=("forwards", lambda s: s.sum(min_count=1)),
                              replies=("replies", lambda s: s.sum(min_count=1)), reactions=("reaction_sum", "sum"))
    med["hashed"] = med["status"] == "hashed"
    d = med.groupby(keys).agg(media=("media_index", "size"), media_hashed=("hashed", "sum"))
    mat["media_key"] = list(zip(mat["channel_id"], mat["message_id"], mat["media_index"], strict=True))
    x = mat.groupby(keys).agg(matches=("match_id", "size"), matched_media=("media_key", "nunique"))
    daily = m.join(d, how="outer").join(x, how="outer").reset_index()
    for col in ("messages", "messages_deleted", "forwarded_messages", "reactions", "media", "media_hashed",
                "matches", "matched_media"):
        daily[col] = daily[col].fillna(0)

    mat["category"] = mat["category"].fillna("")
    md = mat.groupby(["day", "list_name", "category", "signal_type"]).agg(
        matches=("match_id", "size"), media=("media_key", "nunique"), channels=("channel_id", "nunique")).reset_index()

    fwd = msg[msg["is_fwd"]].copy()
    fwd["source_key"] = [f"id:{int(c)}" if pd.notna(c) else f"name:{n}"
                         for c, n in zip(fwd["fwd_from_channel_id"], fwd["fwd_from_name"], strict=True)]
    matched = set(zip(mat["channel_id"], mat["message_id"], strict=True))
    fwd["matched"] = [(c, i) in matched for c, i in zip(fwd["channel_id"], fwd["message_id"], strict=True)]
    fwd["with_media"] = fwd["media_kind"].notna()
    edges = []
    for (key, target), g in fwd.groupby(["source_key", "channel_id"]):
        named = g[g["fwd_from_name"].notna()].sort_values(["date", "message_id"])
        edges.append({"source_key": key, "source_channel_id": g["fwd_from_channel_id"].dropna().max()
                      if g["fwd_from_channel_id"].notna().any() else None,
                      "source_name": named["fwd_from_name"].iloc[-1] if len(named) else None,
                      "target_channel_id": target, "forwards": len(g),
                      "forwards_with_media": int(g["with_media"].sum()),
                      "forwards_matched": int(g["matched"].sum()), "first_date": g["date"].min(),
                      "last_date": g["date"].max()})
    return {"channel_daily": _records(daily, CHANNEL_DAILY), "matches_daily": _records(md, MATCHES_DAILY),
            "forward_edges": _records(pd.DataFrame(edges), FORWARD_EDGES)}


def _plain(value: Any) -> Any:
    if value is None or (not isinstance(value, list | tuple) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):
        return value.item()
    return value


def _records(frame: pd.DataFrame, spec) -> list[dict]:
    columns = [c for c in spec.schema.names if c != "computed_at"]
    if frame.empty:
        return []
    rows = [{c: _plain(r[c]) for c in columns} for r in frame.to_dict("records")]
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in spec.primary_key))


def actual(root: Path) -> dict[str, list[dict]]:
    out = {}
    for name, spec in (("channel_daily", CHANNEL_DAILY), ("matches_daily", MATCHES_DAILY),
                       ("forward_edges", FORWARD_EDGES)):
        files = sorted((root / spec.name).rglob("*.parquet")) if (root / spec.name).exists() else []
        rows = [r for f in files for r in pq.read_table(f, schema=spec.schema).to_pylist()]
        for r in rows:
            r.pop("computed_at")
        out[name] = sorted(rows, key=lambda r: tuple(str(r[k]) for k in spec.primary_key))
    return out


def aggregate(root: Path, full: bool = False) -> AggregateResult:
    return run_aggregate(load_settings(storage=str(root), environ={}), full=full)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every output and state file (run reports aside): bytes and mtime_ns."""
    files = [*root.joinpath("aggregates").rglob("*"), *root.joinpath("_state", "aggregates").rglob("*")]
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in files if p.is_file()}


def computed_at(root: Path, spec, month: str) -> dict[tuple, dt.datetime]:
    rows = pq.read_table(root / spec.name / f"month={month}" / "part.parquet").to_pylist()
    return {tuple(r[k] for k in spec.primary_key): r["computed_at"] for r in rows}


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = sample_world(tmp_path / "data")
    first = aggregate(w.root)
    assert first.counts["full"] == 1 and first.counts["state_written"] == 1
    return w


# --- exact numbers ---------------------------------------------------------------------------------------

def test_aggregates_equal_an_independent_pandas_computation(world: World) -> None:
    got = actual(world.root)
    assert got == expected(world)
    daily = {(r["channel_id"], r["day"]): r for r in got["channel_daily"]}
    # 5 January, channel A: the service message is not counted; 23:59 UTC is still the 5th.
    assert daily[(A, dt.date(2026, 1, 5))] == {
        "channel_id": A, "day": dt.date(2026, 1, 5), "messages": 2, "messages_deleted": 0, "forwarded_messages": 1,
        "views": 150, "forwards": 2, "replies": 1, "reactions": 5, "media": 3, "media_hashed": 2, "matches": 3,
        "matched_media": 2}
    # 6 January 00:01: a deleted, name-only forward without counters: posted, so counted; counters unknown.
    assert daily[(A, dt.date(2026, 1, 6))]["messages_deleted"] == 1
    assert daily[(A, dt.date(2026, 1, 6))]["views"] is None
    assert daily[(B, dt.date(2026, 1, 5))]["reactions"] == 0
    assert len(daily) == 9
    matches = {(r["day"], r["list_name"], r["category"], r["signal_type"]): r for r in got["matches_daily"]}
    assert matches[(dt.date(2026, 1, 5), "partner", "", "pdq")]["matches"] == 1
    assert matches[(dt.date(2026, 1, 5), "hotline", "ncii", "pdq")]["media"] == 1
    edges = {(r["source_key"], r["target_channel_id"]): r for r in got["forward_edges"]}
    source_to_a = edges[(f"id:{SOURCE}", A)]
    assert (source_to_a["forwards"], source_to_a["forwards_with_media"], source_to_a["forwards_matched"]) == (2, 2, 1)
    assert source_to_a["source_name"] == "Source One (renamed)"  # the latest name
    assert source_to_a["first_date"] == ts(1, 5, 23, 59) and source_to_a["last_date"] == ts(1, 20)
    assert edges[("name:Hidden Forwarder", B)]["source_channel_id"] is None
    assert edges[(f"id:{B}", A)]["forwards_matched"] == 1
    assert len(edges) == 5


def test_files_are_monthly_and_carry_dataset_and_version(world: World) -> None:
    months = sorted(p.parent.name for p in (world.root / CHANNEL_DAILY.name).glob("month=*/part.parquet"))
    assert months == ["month=2026-01", "month=2026-02", "month=2026-03"]
    assert sorted(p.parent.name for p in (world.root / MATCHES_DAILY.name).glob("month=*/part.parquet")) == [
        "month=2026-01", "month=2026-02"]
    meta = pq.read_schema(world.root / FORWARD_EDGES.name / "edges.parquet").metadata
    assert meta[b"chanwatch.dataset"] == FORWARD_EDGES.name.encode()
    table = pq.read_table(world.root / CHANNEL_DAILY.name / "month=2026-01" / "part.parquet")
    assert table.schema.remove_metadata().equals(CHANNEL_DAILY.schema.remove_metadata(), check_metadata=False)
    assert table.column_names == CHANNEL_DAILY.schema.names


# --- incremental and idempotent ----------------------------------------------------------------------

def test_rerun_and_full_rerun_rewrite_no_file(world: World) -> None:
    before = snapshot(world.root)
    again = aggregate(world.root)
    assert snapshot(world.root) == before
    assert again.counts["files_digested"] == 0 and again.counts["days_recomputed"] == 0
    assert again.counts["months_written"] == 0 and again.counts["state_written"] == 0
    assert again.counts["days_unchanged"] == 7 and again.counts["channel_days_unchanged"] == 9
    full = aggregate(world.root, full=True)
    assert full.counts["days_recomputed"] == 7 and full.counts["channel_days_recomputed"] == 9
    assert full.counts["months_written"] == 0 and full.counts["edges_written"] == 0
    assert snapshot(world.root) == before


def test_a_new_message_recomputes_only_its_day_and_month(world: World) -> None:
    before = snapshot(world.root)
    stamps = computed_at(world.root, CHANNEL_DAILY, "2026-02")
    world.message(A, BUCKET_SIZE + 4, ts(2, 10, 20), views=1, fwd_from_channel_id=SOURCE, media_kind="photo")
    world.media(A, BUCKET_SIZE + 4)
    assert len(world.flush()) == 2  # A's February messages and media files
    result = aggregate(world.root)
    c = result.counts
    assert (c["files_digested"], c["channel_days_recomputed"], c["days_recomputed"]) == (2, 1, 1)
    assert (c["months_written"], c["edges_written"], c["edge_partials_written"]) == (1, 1, 1)
    assert c["days_unchanged"] == 6 and c["rows_changed"] == 2  # the day's row, and the SOURCE -> A edge
    assert actual(world.root) == expected(world)
    after = snapshot(world.root)
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed == {"aggregates/channel_daily/month=2026-02/part.parquet",
                       "aggregates/forward_edges/edges.parquet",
                       "_state/aggregates/forward_edges_daily/month=2026-02/part.parquet",
                       "_state/aggregates/inputs.parquet"}
    new_stamps = computed_at(world.root, CHANNEL_DAILY, "2026-02")
    assert {k: v for k, v in new_stamps.items() if v != stamps.get(k)} == {
        (A, dt.date(2026, 2, 10)): new_stamps[(A, dt.date(2026, 2, 10))]}
    assert new_stamps[(A, dt.date(2026, 2, 10))] > stamps[(A, dt.date(2026, 2, 10))]


def test_a_message_on_a_new_day_adds_one_row(world: World) -> None:
    world.message(B, 5, ts(3, 15), views=3)
    world.flush()
    c = aggregate(world.root).counts
    assert (c["channel_days_recomputed"], c["days_recomputed"], c["months_written"], c["edges_written"]) == (1, 1, 1, 0)
    assert c["channel_days_unchanged"] == 9
    assert actual(world.root) == expected(world)


def test_the_deletion_flag_recomputes_its_day(world: World) -> None:
    before = snapshot(world.root)
    world.rows[MESSAGES.name][(B, 1)]["deleted"] = True  # 5 January, channel B
    world.flush()
    c = aggregate(world.root).counts
    assert (c["channel_days_recomputed"], c["days_recomputed"], c["months_written"]) == (1, 1, 1)
    daily = {(r["channel_id"], r["day"]): r for r in actual(world.root)["channel_daily"]}
    assert daily[(B, dt.date(2026, 1, 5))]["messages_deleted"] == 1
    assert daily[(B, dt.date(2026, 1, 5))]["messages"] == 1  # still counted as posted
    assert actual(world.root) == expected(world)
    after = snapshot(world.root)
    assert after["aggregates/channel_daily/month=2026-02/part.parquet"] == \
        before["aggregates/channel_daily/month=2026-02/part.parquet"]


def test_a_change_no_aggregate_reads_recomputes_nothing(world: World) -> None:
    before = snapshot(world.root)
    world.rows[MESSAGES.name][(A, 2)]["text"] = "edited text"  # the file is rewritten, no aggregated column moves
    assert world.flush() == [message_file(MESSAGES, A, "2026-01", 0)]
    c = aggregate(world.root).counts
    assert (c["files_digested"], c["days_recomputed"], c["months_written"]) == (1, 0, 0)
    after = snapshot(world.root)
    assert {p for p in after if after[p] != before[p]} == {"_state/aggregates/inputs.parquet"}  # new fingerprint


def test_a_new_match_updates_daily_counts_matches_and_edges(world: World) -> None:
    world.match(B, 2, 0, "partner", "other", "phash", "e9")  # B's forward from SOURCE, 10 February
    world.flush()
    c = aggregate(world.root).counts
    assert (c["files_digested"], c["channel_days_recomputed"], c["days_recomputed"]) == (1, 1, 1)
    assert c["months_written"] == 2  # channel_daily and matches_daily for February
    got = actual(world.root)
    assert got == expected(world)
    md = [r for r in got["matches_daily"] if r["day"] == dt.date(2026, 2, 10)]
    assert [(r["list_name"], r["category"], r["matches"]) for r in md] == [("hotline", "ncii", 1),
                                                                           ("partner", "other", 1)]


def test_a_removed_input_file_removes_its_rows_and_empty_months(world: World) -> None:
    for key in [k for k in world.rows[MESSAGES.name] if k[0] == B and k[1] >= 3]:  # B's March
        del world.rows[MESSAGES.name][key]
    assert world.flush() == [message_file(MESSAGES, B, "2026-03", 0)]
    c = aggregate(world.root).counts
    assert (c["files_removed"], c["channel_days_recomputed"], c["months_removed"]) == (1, 2, 1)
    assert not (world.root / CHANNEL_DAILY.name / "month=2026-03").joinpath("part.parquet").exists()
    assert not (world.root / "_state/aggregates/forward_edges_daily/month=2026-03/part.parquet").exists()
    assert actual(world.root) == expected(world)


def test_an_output_deleted_by_hand_is_rebuilt(world: World) -> None:
    want = actual(world.root)
    (world.root / CHANNEL_DAILY.name / "month=2026-01" / "part.parquet").unlink()
    (world.root / FORWARD_EDGES.name / "edges.parquet").unlink()
    shutil.rmtree(world.root / "_state/aggregates/forward_edges_daily/month=2026-02")
    c = aggregate(world.root).counts
    assert (c["months_written"], c["edges_written"], c["edge_partials_written"]) == (1, 1, 1)
    assert actual(world.root) == want


def test_incremental_history_equals_a_fresh_full_build(world: World, tmp_path: Path) -> None:
    world.message(A, 6, ts(1, 21), fwd_from_name="New Source", media_kind="photo")
    world.media(A, 6)
    world.flush()
    aggregate(world.root)
    world.rows[MESSAGES.name][(A, 2)]["views"] = 1000
    world.match(A, 6, 0, "hotline", "ncii")
    del world.rows[MEDIA.name][(B, 1, 0)]
    world.flush()
    aggregate(world.root)
    fresh = tmp_path / "fresh"
    for dataset in (MESSAGES, MEDIA, MATCHES):
        shutil.copytree(world.root / dataset.name, fresh / dataset.name)
    aggregate(fresh)
    assert actual(world.root) == actual(fresh) == expected(world)
    assert aggregate(world.root, full=True).counts["months_written"] == 0


def test_no_inputs_writes_nothing_but_the_state(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    c = aggregate(root).counts
    assert (c["input_files"], c["months_written"], c["edges"]) == (0, 0, 0)
    assert not (root / "aggregates").exists()
    assert aggregate(root).counts["state_written"] == 0


# --- crash safety ----------------------------------------------------------------------------------

def run_killed(root: Path, fault: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHANWATCH_FAULT_INJECT": fault, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "chanwatch.steps.aggregate", "--storage", str(root)], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)


def test_a_crash_between_data_and_state_is_redone_not_skipped(world: World) -> None:
    state = world.root / "_state/aggregates/inputs.parquet"
    state_before = (state.read_bytes(), state.stat().st_mtime_ns)
    world.message(A, BUCKET_SIZE + 5, ts(2, 11, 13), views=5)
    world.flush()
    done = run_killed(world.root, "aggregate_state:1")  # every output written, killed before the state
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert (state.read_bytes(), state.stat().st_mtime_ns) == state_before, "state must not run ahead of data"
    assert actual(world.root) == expected(world)  # the data was written first
    c = aggregate(world.root).counts
    assert (c["files_digested"], c["channel_days_recomputed"]) == (1, 1), "the day is recomputed again"
    assert (c["months_written"], c["state_written"]) == (0, 1)  # its file already holds the result
    assert actual(world.root) == expected(world)
    assert aggregate(world.root).counts["days_recomputed"] == 0


@pytest.mark.parametrize("fault", ["aggregate:1", "aggregate:2", "aggregate:3"])
def test_a_crash_after_any_output_file_then_a_rerun_completes(world: World, fault: str) -> None:
    world.message(A, 7, ts(1, 25), fwd_from_channel_id=SOURCE)  # January: channel_daily, partials, edges
    world.message(B, 6, ts(3, 3), views=2)  # March
    world.flush()
    done = run_killed(world.root, fault)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert actual(world.root) != expected(world)
    c = aggregate(world.root).counts
    assert c["channel_days_recomputed"] == 2
    assert actual(world.root) == expected(world)
    before = snapshot(world.root)
    aggregate(world.root)
    assert snapshot(world.root) == before


def test_runner_prints_counts(world: World) -> None:
    done = subprocess.run([sys.executable, "-m", "chanwatch.steps.aggregate", "--storage", str(world.root)],
                          cwd=world.root, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"days_recomputed":0' in done.stdout
    assert "event=aggregate.done" in done.stderr and "days_unchanged=7" in done.stderr


# --- the demo channel, end to end --------------------------------------------------------------------

def test_demo_pipeline_aggregates_equal_pandas(tmp_path: Path) -> None:
    from chanwatch.steps.demo import build_demo, import_demo_list, run_demo
    from chanwatch.steps.match import run_match

    settings = load_settings(storage=str(tmp_path / "data"), environ={})
    export = build_demo(tmp_path / "demo")
    run_demo(settings, export)
    import_demo_list(settings, export)
    assert run_match(settings).counts["matches_new"] > 0
    result = run_aggregate(settings)
    root = tmp_path / "data"
    frames = [pd.read_parquet(root / spec.name, columns=list(spec.schema.names)) for spec in (MESSAGES, MEDIA, MATCHES)]
    want = expected_from_frames(*frames)
    got = actual(root)
    assert got == want
    assert sum(r["matches"] for r in got["channel_daily"]) == len(frames[2]) > 0
    forwarded = sum(r["forwarded_messages"] for r in got["channel_daily"])
    assert forwarded == sum(r["forwards"] for r in got["forward_edges"]) > 0
    assert result.counts["days_recomputed"] == len({r["day"] for r in got["channel_daily"]})
    # The demo re-run (import and match again) changes no input, and aggregate then changes nothing.
    before = snapshot(root)
    run_demo(settings, export)
    run_match(settings)
    assert run_aggregate(settings).counts["files_digested"] == 0
    assert snapshot(root) == before


def test_processing_aggregates_is_pure_sql_text() -> None:
    """DESIGN: processing imports neither collectors nor storage, and does no I/O of its own."""
    import ast

    for path in (REPO / "processing" / "aggregates").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] in {"__future__", "collections", "processing"}, f"{path.name}: {name}"
