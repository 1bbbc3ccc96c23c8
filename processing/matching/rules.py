"""Match rules: thresholds per signal type. Every value is a `[matching]` setting (see README)."""

from __future__ import annotations

from dataclasses import dataclass

from processing.matching.vpdq_index import VpdqRules


@dataclass(frozen=True)
class MatchRules:
    # Hamming thresholds (a match is distance <= threshold), as DESIGN.md's signal table sets them.
    pdq_max_distance: int = 31
    phash_max_distance: int = 8
    dhash_max_distance: int = 8
    # PDQ hashes below this quality are too flat to compare and are not matched (counted instead).
    pdq_min_quality: int = 50
    # vPDQ: per-frame quality floor and distance, and the two match shares (0 = not checked).
    vpdq_frame_quality: int = 50
    vpdq_frame_distance: int = 31
    vpdq_query_match_percent: float = 80.0
    vpdq_compared_match_percent: float = 0.0
    # Banks up to this many hashes use FAISS's flat index; larger ones multi-index hashing.
    flat_index_max_entries: int = 50_000
    # Processes `chanwatch match` searches lists with, one list each at a time (a large bank built as several
    # lists then uses every core; docs/scaling.md). 1 searches them one after another in the step's process.
    workers: int = 1

    def max_distance(self, signal: str) -> int:
        return {"pdq": self.pdq_max_distance, "phash": self.phash_max_distance,
                "dhash": self.dhash_max_distance, "vpdq": self.vpdq_frame_distance}.get(signal, 0)

    def vpdq(self) -> VpdqRules:
        return VpdqRules(self.vpdq_frame_quality, self.vpdq_frame_distance, self.vpdq_query_match_percent,
                         self.vpdq_compared_match_percent)
