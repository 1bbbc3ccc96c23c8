"""vPDQ comparison rules, as in Meta's vPDQ: frame sets, not frame sequences.

A query frame matches when some target frame (both with quality >= 50) is within PDQ distance 31.
The query match is the share of the query's good frames that match; the compared match is the share
of the target's good frames that match some query frame. A video matches at 80% query match (and 80%
compared match where configured).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_QUALITY = 50
DEFAULT_DISTANCE = 31
DEFAULT_MATCH_PERCENT = 80.0


@dataclass(frozen=True)
class VpdqMatch:
    query_match_percent: float
    compared_match_percent: float

    def is_match(self, query_threshold: float = DEFAULT_MATCH_PERCENT,
                 compared_threshold: float | None = None) -> bool:
        if self.query_match_percent < query_threshold:
            return False
        return compared_threshold is None or self.compared_match_percent >= compared_threshold


def _good_hashes(frames: Sequence[dict], quality: int) -> np.ndarray:
    """Unique PDQ hashes of frames with enough quality, as rows of 32 bytes."""
    hexes = sorted({f["pdq"] for f in frames if f["quality"] >= quality})
    if not hexes:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(-1, 32)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between every row of a and every row of b."""
    return np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=2).sum(axis=2)


def vpdq_match(query: Sequence[dict], target: Sequence[dict], *, quality: int = DEFAULT_QUALITY,
               distance: int = DEFAULT_DISTANCE) -> VpdqMatch:
    """Compare two videos' frames ({ts, pdq, quality} dicts) under vPDQ's rules."""
    q, t = _good_hashes(query, quality), _good_hashes(target, quality)
    if len(q) == 0 or len(t) == 0:
        return VpdqMatch(0.0, 0.0)
    close = _distances(q, t) <= distance
    return VpdqMatch(100.0 * close.any(axis=1).mean(), 100.0 * close.any(axis=0).mean())
