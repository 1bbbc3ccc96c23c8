"""Search one list version's indexes with a batch of media hashes, under the match rules.

Shared by `chanwatch match` (every unmatched media row) and `chanwatch lookup` (hashes given on the
command line): the same code path decides what matches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from processing.matching.binary_index import search
from processing.matching.codes import hex_array_to_codes
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
    """Hashes of many media items: per signal an Arrow column of hex (null where absent), PDQ quality,
    and vPDQ frame lists."""

    size: int
    hexes: dict[str, pa.Array | pa.ChunkedArray] = field(default_factory=dict)
    pdq_quality: pa.Array | pa.ChunkedArray | None = None
    frames: Sequence[Sequence[dict] | None] | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_lists(cls, hexes: dict[str, list[str | None]], pdq_quality: list[int | None],
                   frames: list[list[dict] | None]) -> QueryBatch:
        return cls(len(frames), {s: pa.array(v, pa.string()) for s, v in hexes.items()},
                   pa.array(pdq_quality, pa.int32()), frames)

    def coded(self, signal: str, rules: MatchRules) -> tuple[np.ndarray, np.ndarray]:
        """(query indexes, packed codes) of the rows that carry `signal` and may be matched."""
        values = self.hexes.get(signal)
        if values is None:
            return np.zeros(0, np.int64), np.zeros((0, SIGNALS[signal].hex_len // 2), np.uint8)
        present = pc.is_valid(values)
        if signal == "pdq" and self.pdq_quality is not None:
            good = pc.fill_null(pc.greater_equal(self.pdq_quality, rules.pdq_min_quality), False)
            self.counts["pdq_low_quality"] = pc.sum(pc.and_(present, pc.invert(good))).as_py() or 0
            present = pc.and_(present, good)
        rows = np.flatnonzero(np.asarray(present.to_numpy(zero_copy_only=False), dtype=bool))
        codes = hex_array_to_codes(pc.filter(values, present), SIGNALS[signal].hex_len // 2)
        return rows.astype(np.int64), codes


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
