"""Hash-list steps: import a list as a new version, show versions, enable, disable, roll back.

An import validates the whole file before anything is written, writes and indexes the version, and
only then makes it active (an atomic replace of the registry). A bad file leaves the previous
version active and untouched.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from chanwatch.runs import new_run_id, now_utc
from chanwatch.settings import Settings
from processing.errors import BadInputError
from processing.hashlists.parse import ParsedList, merge_parsed, parse_hash_list
from processing.matching.binary_index import build_index
from processing.matching.exact_index import ExactIndex
from processing.matching.signals import SIGNALS
from processing.matching.vpdq_index import VpdqIndex
from storage.checkpoints import write_run_report
from storage.hashbanks import LOOKUP_COLUMNS, HashBanks, check_list_name
from storage.schemas import HASHLISTS
from storage.store import Store

log = logging.getLogger("chanwatch.hashlists")


@dataclass
class ImportResult:
    name: str
    version: int
    previous_version: int | None
    parsed: ParsedList
    list_enabled: bool
    timings: dict[str, float] = field(default_factory=dict)
    index_kinds: dict[str, str] = field(default_factory=dict)


def index_signal(signal: str, entries: pa.Table, codes: Any, settings: Settings) -> Any:
    """The index for one signal's entries: Hamming (flat or multi-index), exact, or vPDQ."""
    rules = settings.matching
    compare = SIGNALS[signal].compare
    if compare == "hamming":
        return build_index(codes, rules.flat_index_max_entries)
    if compare == "exact":
        return ExactIndex.build(codes)
    return VpdqIndex.build(entries["frames"].to_pylist(), rules.vpdq_frame_quality)


def build_indexes(parsed: ParsedList, settings: Settings) -> dict[str, Any]:
    return {signal: index_signal(signal, e.table, e.codes, settings) for signal, e in parsed.signals.items()}


def list_files(path: Path) -> list[Path]:
    """The file itself, or every visible file of a folder (a vPDQ list is one file per video)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise BadInputError(f"{path}: folder holds no list files")
        return files
    if not path.is_file():
        raise BadInputError(f"{path}: no such file")
    return [path]


def import_hash_list(settings: Settings, path: Path, name: str, category: str, fmt: str = "auto",
                     signal: str | None = None) -> ImportResult:
    check_list_name(name)
    if not category.strip():
        raise BadInputError("--category must not be empty")
    started = time.perf_counter()
    files = list_files(path)
    parts, digest = [], hashlib.sha256()
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise BadInputError(f"{file}: cannot read: {exc.strerror}") from None
        digest.update(data)
        parts.append((file.name, parse_hash_list(data, file, fmt=fmt, signal=signal, category=category)))
    parsed = merge_parsed(parts)
    timings = {"parse_s": time.perf_counter() - started}
    store = Store(settings.storage_root)
    banks = HashBanks(store)
    run_id = new_run_id("hashlist")
    with store.writer_lock():
        version = banks.next_version(name)
        mark = time.perf_counter()
        indexes = build_indexes(parsed, settings)
        timings["index_s"] = time.perf_counter() - mark
        mark = time.perf_counter()
        entries = _entries_table(parsed, name, version)
        lookup = {s: e.table.select(list(LOOKUP_COLUMNS)) for s, e in parsed.signals.items()}
        banks.write_version(name, version, entries, indexes, lookup)
        timings["write_s"] = time.perf_counter() - mark
        rows = banks.registry().to_pylist()
        previous = next((r for r in rows if r["list_name"] == name and r["state"] == "active"), None)
        enabled = previous["list_enabled"] if previous else True
        now = now_utc()
        for row in rows:
            if row["list_name"] == name and row["state"] == "active":
                row.update(state="inactive", state_changed_at=now)
        kinds = {s: i.kind for s, i in indexes.items()}
        rows.append({
            "list_name": name, "list_version": version, "state": "active", "list_enabled": enabled,
            "category": category, "format": parsed.format,
            "source_file": path.name + ("/" if path.is_dir() else ""),
            "source_sha256": digest.hexdigest(), "entries": parsed.entry_count,
            "entries_by_signal": orjson.dumps(parsed.counts()).decode(),
            "duplicates_folded": parsed.duplicates_folded, "ignored": orjson.dumps(dict(parsed.ignored)).decode(),
            "index_kinds": orjson.dumps(kinds).decode(), "imported_at": now, "state_changed_at": now,
            "run_id": run_id})
        banks.write_registry(rows)  # the version is live from here
        timings["total_s"] = time.perf_counter() - started
        result = ImportResult(name, version, previous["list_version"] if previous else None, parsed, enabled,
                              timings, kinds)
        write_run_report(store, run_id, {
            "run_id": run_id, "step": "hashlist-import", "list_name": name, "list_version": version,
            "source_file": str(path), "format": parsed.format, "entries": parsed.counts(),
            "duplicates_folded": parsed.duplicates_folded, "ignored": dict(parsed.ignored),
            "index_kinds": kinds, "timings": timings})
    log.info("hashlist import list=%s version=%d entries=%d duplicates=%d ignored=%d total_s=%.2f", name, version,
             parsed.entry_count, parsed.duplicates_folded, sum(parsed.ignored.values()), timings["total_s"])
    return result


def _entries_table(parsed: ParsedList, name: str, version: int) -> pa.Table:
    tables = []
    for signal in sorted(parsed.signals):
        table = parsed.signals[signal].table
        n = table.num_rows
        table = table.append_column("list_name", pa.repeat(pa.scalar(name, pa.string()), n))
        table = table.append_column("list_version", pa.repeat(pa.scalar(version, pa.int32()), n))
        table = table.append_column("enabled", pa.repeat(pa.scalar(True), n))
        tables.append(table.select(HASHLISTS.schema.names).cast(HASHLISTS.schema))
    return pa.concat_tables(tables) if tables else HASHLISTS.empty_table()


def list_versions(settings: Settings) -> list[dict[str, Any]]:
    return HashBanks(Store(settings.storage_root)).registry().to_pylist()


def _change(settings: Settings, name: str, change) -> list[dict[str, Any]]:
    store = Store(settings.storage_root)
    banks = HashBanks(store)
    with store.writer_lock():
        rows = banks.registry().to_pylist()
        mine = [r for r in rows if r["list_name"] == name]
        if not mine:
            known = sorted({r["list_name"] for r in rows})
            raise BadInputError(f"no hash list named {name!r} (known: {', '.join(known) or 'none'})")
        change(mine, now_utc())
        banks.write_registry(rows)
    return mine


def set_list_enabled(settings: Settings, name: str, enabled: bool) -> list[dict[str, Any]]:
    def change(rows: list[dict[str, Any]], now) -> None:
        for row in rows:
            if row["list_enabled"] != enabled:
                row.update(list_enabled=enabled, state_changed_at=now)
    log.info("hashlist %s list=%s", "enable" if enabled else "disable", name)
    return _change(settings, name, change)


def rollback(settings: Settings, name: str, version: int) -> list[dict[str, Any]]:
    """Make an earlier (or any other) version active again; the next match run retro-hunts its entries."""
    def change(rows: list[dict[str, Any]], now) -> None:
        if not any(r["list_version"] == version for r in rows):
            versions = ", ".join(str(r["list_version"]) for r in rows)
            raise BadInputError(f"{name} has no version {version} (versions: {versions})")
        HashBanks(Store(settings.storage_root)).load(name, version)  # refuse if its files are gone
        for row in rows:
            state = "active" if row["list_version"] == version else "inactive"
            if row["state"] != state:
                row.update(state=state, state_changed_at=now)
    log.info("hashlist rollback list=%s version=%d", name, version)
    return _change(settings, name, change)
