"""The `lookup` step: which listed entries do these hashes (or files) match, in the active list versions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chanwatch.settings import Settings
from chanwatch.steps.hash_files import hash_file
from processing.errors import BadInputError
from processing.matching.search import QueryBatch, search_version
from processing.matching.signals import SIGNALS, canonical_signal
from storage.hashbanks import HashBanks
from storage.store import Store

QUERY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*):([0-9A-Fa-f]+)$")
HASH_SIGNALS = ("pdq", "phash", "dhash", "md5", "sha256")


def parse_queries(queries: list[str], settings: Settings) -> tuple[QueryBatch, list[str | None]]:
    """A batch with one row per query; `errors[i]` says why query i could not be hashed."""
    hexes: dict[str, list[str | None]] = {s: [None] * len(queries) for s in HASH_SIGNALS}
    quality: list[int | None] = [None] * len(queries)
    frames: list[list[dict] | None] = [None] * len(queries)
    errors: list[str | None] = [None] * len(queries)
    for i, query in enumerate(queries):
        found = QUERY_RE.match(query)
        signal = None
        if found and not Path(query).exists():
            try:
                signal = canonical_signal(found.group(1))
            except KeyError:
                signal = None
            if signal is None or SIGNALS[signal].compare == "vpdq":
                raise BadInputError(f"{query}: unknown signal {found.group(1)!r}; use one of "
                                    f"{', '.join(HASH_SIGNALS)} (or give a video file for vpdq)")
            value = found.group(2).lower()
            if len(value) != SIGNALS[signal].hex_len:
                raise BadInputError(f"{query}: a {signal} hash has {SIGNALS[signal].hex_len} hex digits, "
                                    f"got {len(value)}")
            hexes[signal][i] = value
            if signal == "pdq":
                quality[i] = 100  # a hash given by hand is taken as good enough to compare
            continue
        if not Path(query).is_file():
            raise BadInputError(f"{query}: not a file, and not SIGNAL:HEX (e.g. pdq:<64 hex>)")
        hashed = hash_file(query, settings.hashing, settings.imports.max_media_bytes)
        for s in HASH_SIGNALS:
            hexes[s][i] = hashed.get(s)
        quality[i] = hashed.get("pdq_quality")
        frames[i] = hashed.get("frames")
        errors[i] = hashed.get("error")
    return QueryBatch.from_lists(hexes, quality, frames), errors


def lookup(settings: Settings, queries: list[str]) -> Iterator[dict[str, Any]]:
    """One dict per match (and one per query that could not be hashed, with `error`)."""
    batch, errors = parse_queries(queries, settings)
    for i, error in enumerate(errors):
        if error and not batch.hexes["sha256"][i].is_valid:
            yield {"query": queries[i], "error": error}
    banks = HashBanks(Store(settings.storage_root))
    lines = []
    for bank in banks.load_active():
        for hit in search_version(bank.indexes, batch, settings.matching):
            entry = bank.entry(hit.signal, hit.position)
            line = {"query": queries[hit.query], "list_name": bank.name, "list_version": bank.version,
                    "entry_id": entry["entry_id"], "signal_type": hit.signal, "distance": hit.distance,
                    "category": entry["category"]}
            if hit.signal == "vpdq":
                line.update(query_match_percent=hit.query_match_percent,
                            compared_match_percent=hit.compared_match_percent)
            lines.append((hit.query, bank.name, hit.distance if hit.distance is not None else -1, line))
    lines.sort(key=lambda t: (t[0], t[2], t[1]))
    for *_, line in lines:
        yield line
