"""Search one list version's indexes with a batch of media hashes, under the match rules.

Shared by `chanwatch match` (every unmatched media row) and `chanwatch lookup` (hashes given on the
command line): the same code path decides what matches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from processing.matching.binary_index import search
from processing.matching.codes import hex_to_codes
from processing.matching.rules import MatchRules
from processing.matching.signals import SIGNALS


@dataclass(frozen=True)
class Hit:
    query: int  # index into the batch
    signal: str
    position: int  # entry position within the version's index for `signal`
    distance: int | None
    threshold: int
    query_match_percent: float | None = None
    compared_match_percent: float | None = None


@dataclass
class QueryBatch:
    """Hashes of many media items, by signal: hex strings (None where absent) and vPDQ frame lists."""

    size: int
    hexes: dict[str, Sequence[str | None]] = field(default_factory=dict)
    pdq_quality: Sequence[int | None] | None = None
    frames: Sequence[Sequence[dict] | None] | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def coded(self, signal: str, rules: MatchRules) -> tuple[np.ndarray, np.ndarray]:
        """(query indexes, packed codes) of the rows that carry `signal` and may be matched."""
        values = self.hexes.get(signal) or ()
        keep = [i for i, v in enumerate(values) if v]
        if signal == "pdq" and self.pdq_quality is not None:
            low = [i for i in keep if (self.pdq_quality[i] or 0) < rules.pdq_min_quality]
            if low:
                self.counts["pdq_low_quality"] = len(low)
                low_set = set(low)
                keep = [i for i in keep if i not in low_set]
        codes = hex_to_codes([values[i] for i in keep], SIGNALS[signal].hex_len // 2)
        return np.array(keep, dtype=np.int64), codes


def search_version(indexes: Mapping[str, Any], batch: QueryBatch, rules: MatchRules) -> list[Hit]:
    """Every hit of the batch against one list version's indexes."""
    hits: list[Hit] = []
    for signal, index in indexes.items():
        compare = SIGNALS[signal].compare
        if compare == "vpdq":
            vpdq_rules = rules.vpdq()
            for i, frames in enumerate(batch.frames or ()):
                if frames:
                    hits.extend(Hit(i, signal, h.entry, None, vpdq_rules.frame_distance, h.query_match_percent,
                                    h.compared_match_percent) for h in index.match(frames, vpdq_rules))
            continue
        rows, codes = batch.coded(signal, rules)
        if not len(rows):
            continue
        threshold = rules.max_distance(signal)
        q, positions, distances = index.search(codes) if compare == "exact" else search(index, codes, threshold)
        hits.extend(Hit(int(rows[a]), signal, int(b), int(d), threshold)
                    for a, b, d in zip(q.tolist(), positions.tolist(), distances.tolist(), strict=True))
    return hits
