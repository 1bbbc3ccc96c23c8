"""The `match` step: check every hashed media row against the active list versions, and retro-hunt.

For each active list version V, a media row is in one of three states, read from the ledger:
- never checked against this list (or its bytes changed): searched against V's whole index;
- checked against another version v: searched only against the entries of V that v lacks, so a
  list that grows finds old posts (the retro-hunt) without re-searching what was already searched;
- checked against V: skipped.
Matches are committed first, then the ledger, so a crash costs a repeated search, never a lost match.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chanwatch.runs import new_run_id, now_micros
from chanwatch.settings import Settings
from processing.matching.codes import hex_to_codes
from processing.matching.search import Hit, QueryBatch, search_version
from processing.matching.signals import SIGNALS
from storage.checkpoints import write_run_report
from storage.hashbanks import Bank, HashBanks
from storage.match_state import hashed_media, read_ledger, write_ledger
from storage.schemas import BUCKET_SIZE, MATCHES
from storage.store import Store
from storage.writer import message_file, month_of_micros

log = logging.getLogger("chanwatch.match")
QUERY_CHUNK = 50_000


@dataclass
class MatchResult:
    run_id: str
    counts: dict[str, int] = field(default_factory=dict)
    per_list: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    new_matches: list[dict[str, Any]] = field(default_factory=list)


def match_id(channel_id: int, message_id: int, media_index: int, list_name: str, signal: str, entry_hash: str) -> str:
    """Deterministic from (media, list entry): the same pair found again is the same row."""
    key = f"{channel_id}:{message_id}:{media_index}:{list_name}:{signal}:{entry_hash}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def bank_from_entries(name: str, version: int, entries: pa.Table, settings: Settings) -> Bank:
    """An in-memory bank over some entries (a retro-hunt's delta); same index kinds as an import."""
    from chanwatch.steps.hashlists import index_signal

    indexes, lookup = {}, {}
    for signal in pc.unique(entries["signal_type"]).to_pylist():
        part = entries.filter(pc.equal(entries["signal_type"], signal))
        hex_len = SIGNALS[signal].hex_len
        codes = hex_to_codes(part["hash"].to_pylist(), hex_len // 2) if hex_len else None
        indexes[signal] = index_signal(signal, part, codes, settings)
        lookup[signal] = part.select(["entry_id", "category", "hash"])
    return Bank(name, version, indexes, lookup)


def _batch(media: pa.Table) -> QueryBatch:
    has_frames = pc.greater(pc.fill_null(pc.list_value_length(media["frames"]), 0), 0)
    frames: list = [None] * media.num_rows
    for row in np.flatnonzero(np.asarray(has_frames.to_numpy(zero_copy_only=False), dtype=bool)).tolist():
        frames[row] = media["frames"][row].as_py()
    return QueryBatch(
        size=media.num_rows,
        hexes={s: media[s] for s in ("pdq", "phash", "dhash", "md5", "sha256")},
        pdq_quality=media["pdq_quality"],
        frames=frames)


def _delta_entries(banks: HashBanks, name: str, version: int, checked: int) -> pa.Table:
    """Entries of `version` that version `checked` does not list (by signal type and hash)."""
    current = banks.entries(name, version)
    try:
        before = banks.entries(name, checked, columns=["signal_type", "hash"])
    except FileNotFoundError:
        return current
    con = duckdb.connect()
    try:
        con.register("cur", current)
        con.register("old", before)
        return con.sql("SELECT * FROM cur ANTI JOIN old USING (signal_type, hash)").to_arrow_table()
    finally:
        con.close()


class Matcher:
    def __init__(self, settings: Settings, run_id: str | None = None) -> None:
        self.settings = settings
        self.rules = settings.matching
        self.store = Store(settings.storage_root)
        self.banks = HashBanks(self.store)
        self.run_id = run_id or new_run_id("match")
        self.result = MatchResult(self.run_id)
        self.rows: list[dict[str, Any]] = []

    def run(self) -> MatchResult:
        started = time.perf_counter()
        with self.store.writer_lock():
            media = hashed_media(self.store)
            c = self.result.counts
            c.update(media_rows=media.num_rows, media_searched=0, pdq_low_quality=0, matches_found=0,
                     matches_new=0)
            active = self.banks.active_versions()
            workers = min(max(self.rules.workers, 1), len(active))
            if workers > 1:
                ledgers = self._match_lists_in_parallel(active, workers)
            else:
                ledgers = {name: self._match_list(media, name, version) for name, version in active}
            self._commit()
            for name, ledger in ledgers.items():
                write_ledger(self.store, name, ledger)
        self.result.seconds = time.perf_counter() - started
        write_run_report(self.store, self.run_id, {"run_id": self.run_id, "step": "match", "counts": c,
                                                   "per_list": self.result.per_list, "seconds": self.result.seconds})
        log.info("match run=%s media_rows=%d searched=%d pdq_low_quality=%d found=%d new=%d seconds=%.1f",
                 self.run_id, c["media_rows"], c["media_searched"], c["pdq_low_quality"], c["matches_found"],
                 c["matches_new"], self.result.seconds)
        return self.result

    def _match_lists_in_parallel(self, active: list[tuple[str, int]], workers: int) -> dict[str, pa.Table]:
        """One list per worker process at a time; results merged in list order, so the outcome is the same as
        searching them one after another. Workers only read: this process keeps the writer lock and commits."""
        # forkserver, not fork: this process runs threads (DuckDB's pool, the S3 lease heartbeat).
        context = multiprocessing.get_context("forkserver")
        ledgers: dict[str, pa.Table] = {}
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                 initargs=(self.settings, self.run_id)) as pool:
            futures = [pool.submit(_match_one_list, name, version) for name, version in active]
            for (name, _), future in zip(active, futures, strict=True):
                share = future.result()
                ledgers[name] = share.ledger
                self.rows.extend(share.rows)
                self.result.per_list[name] = share.stats
                for key, value in share.counts.items():
                    self.result.counts[key] += value
        log.info("match run=%s lists=%d workers=%d", self.run_id, len(active), workers)
        return ledgers

    def _match_list(self, media: pa.Table, name: str, version: int) -> pa.Table:
        ledger = read_ledger(self.store, name)
        con = duckdb.connect()
        try:
            con.register("media", media.select(["channel_id", "message_id", "media_index", "sha256"]))
            con.register("ledger", ledger)
            checked = con.sql(
                "SELECT l.list_version FROM (SELECT *, row_number() OVER () AS i FROM media) m "
                "LEFT JOIN ledger l ON l.channel_id = m.channel_id AND l.message_id = m.message_id AND "
                "l.media_index = m.media_index AND l.sha256 = m.sha256 ORDER BY m.i").to_arrow_table()["list_version"]
        finally:
            con.close()
        stats = self.result.per_list.setdefault(name, {"version": version, "searched_full": 0,
                                                       "searched_delta": 0, "found": 0})
        full = pc.is_null(checked)
        if pc.any(full).as_py():
            rows = media.filter(full)
            stats["searched_full"] += rows.num_rows
            self._search(self.banks.load(name, version), rows)
        for old in sorted(set(pc.drop_null(checked).to_pylist()) - {version}):
            rows = media.filter(pc.equal(checked, old))
            delta = _delta_entries(self.banks, name, version, old)
            stats["searched_delta"] += rows.num_rows
            stats[f"delta_entries_vs_v{old}"] = delta.num_rows
            if delta.num_rows:
                self._search(bank_from_entries(name, version, delta, self.settings), rows)
        self.result.counts["media_searched"] += stats["searched_full"] + stats["searched_delta"]
        return media.select(["channel_id", "message_id", "media_index", "sha256"]).append_column(
            "list_version", pa.nulls(media.num_rows, pa.int32()).fill_null(version))

    def _search(self, bank: Bank, media: pa.Table) -> None:
        for start in range(0, media.num_rows, QUERY_CHUNK):
            chunk = media.slice(start, QUERY_CHUNK)
            batch = _batch(chunk)
            hits = search_version(bank.indexes, batch, self.rules)
            self.result.counts["pdq_low_quality"] += batch.counts.get("pdq_low_quality", 0)
            for hit in hits:
                self.rows.append(self._row(bank, chunk, hit))
            self.result.per_list[bank.name]["found"] += len(hits)

    def _row(self, bank: Bank, media: pa.Table, hit: Hit) -> dict[str, Any]:
        m = media.slice(hit.query, 1).to_pylist()[0]
        entry = bank.entry(hit.signal, hit.position)
        media_hash = m["sha256"] if hit.signal == "vpdq" else m[hit.signal]
        return {
            "match_id": match_id(m["channel_id"], m["message_id"], m["media_index"], bank.name, hit.signal,
                                 entry["hash"]),
            "channel_id": m["channel_id"], "message_id": m["message_id"], "media_index": m["media_index"],
            "date": m["date"], "media_kind": m["media_kind"], "signal_type": hit.signal, "distance": hit.distance,
            "threshold": hit.threshold, "query_match_percent": hit.query_match_percent,
            "compared_match_percent": hit.compared_match_percent, "media_hash": media_hash,
            "list_name": bank.name, "list_version": bank.version, "entry_id": entry["entry_id"],
            "entry_hash": entry["hash"], "category": entry["category"], "message_url": m["message_url"],
            "matched_at": now_micros(), "run_id": self.run_id}

    def _commit(self) -> None:
        self.result.counts["matches_found"] = len(self.rows)
        if not self.rows:
            return
        table = pa.Table.from_pylist(self.rows, schema=MATCHES.schema)
        txn = self.store.begin(self.run_id)
        try:
            by_file: dict[str, list[int]] = {}
            for i, row in enumerate(self.rows):
                month = month_of_micros(int(row["date"].timestamp() * 1_000_000) if row["date"] else None)
                rel = message_file(MATCHES, row["channel_id"], month, row["message_id"] // BUCKET_SIZE)
                by_file.setdefault(rel, []).append(i)
            new = 0
            for rel, indexes in sorted(by_file.items()):
                new += txn.stage(MATCHES, rel, table.take(indexes))
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        self.result.counts["matches_new"] = new
        self.result.new_matches = self.rows


@dataclass
class _ListShare:
    """What a worker process found for one list: its ledger, match rows, and counts."""

    ledger: pa.Table
    rows: list[dict[str, Any]]
    stats: dict[str, int]
    counts: dict[str, int]


_worker_state: tuple[Matcher, pa.Table] | None = None  # a worker process's matcher and hashed media


def _start_worker(settings: Settings, run_id: str) -> None:
    """Once per worker process: read the hashed media here, not once per list it is given."""
    global _worker_state
    matcher = Matcher(settings, run_id)
    _worker_state = (matcher, hashed_media(matcher.store))


def _match_one_list(name: str, version: int) -> _ListShare:
    """In a worker process: one list version against the hashed media the worker read at its start."""
    assert _worker_state is not None, "the pool's initializer sets the worker's state"
    matcher, media = _worker_state
    matcher.rows, matcher.result = [], MatchResult(matcher.run_id)
    matcher.result.counts.update(media_searched=0, pdq_low_quality=0)
    ledger = matcher._match_list(media, name, version)
    return _ListShare(ledger, matcher.rows, matcher.result.per_list[name], dict(matcher.result.counts))


def run_match(settings: Settings) -> MatchResult:
    """Entry point shared by the CLI and the Airflow task."""
    return Matcher(settings).run()
