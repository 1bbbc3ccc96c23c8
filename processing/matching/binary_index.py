"""Hamming range search over a bank of binary hashes (PDQ, pHash, dHash, vPDQ frames), exact at the threshold.

Small banks use FAISS's flat binary index: a scan is cheap, the index is the codes, and it needs no
tables. Large banks use multi-index hashing (`mih.py`), which touches a few thousand candidates a
query instead of every code. Both return exactly the pairs that brute force returns, with the same
distances; `brute_force` is that reference, and the tests and the benchmark compare against it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from processing.matching.mih import MultiIndexHash, _empty

# Banks up to this many codes use FAISS's flat index (measured crossover; docs/benchmarks.md).
FLAT_MAX_CODES = 50_000


class BinaryIndex(Protocol):
    kind: str

    @property
    def size(self) -> int: ...

    def search(self, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def arrays(self) -> dict[str, np.ndarray]: ...


class FlatIndex:
    """FAISS IndexBinaryFlat: a multithreaded popcount scan, best for small banks."""

    kind = "flat"

    def __init__(self, codes: np.ndarray) -> None:
        import faiss

        self.codes = np.ascontiguousarray(codes, dtype=np.uint8)
        self._index = faiss.IndexBinaryFlat(self.codes.shape[1] * 8)
        if len(self.codes):
            self._index.add(self.codes)

    @property
    def size(self) -> int:
        return len(self.codes)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"codes": self.codes}

    def search(self, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.size == 0 or len(queries) == 0 or max_distance < 0:
            return _empty()
        # FAISS's radius is exclusive: distance < radius.
        limits, distances, ids = self._index.range_search(np.ascontiguousarray(queries, dtype=np.uint8),
                                                          max_distance + 1)
        query_ids = np.repeat(np.arange(len(queries), dtype=np.int64), np.diff(limits).astype(np.int64))
        ids = ids.astype(np.int64)
        order = np.lexsort((ids, query_ids))
        return query_ids[order], ids[order], distances[order].astype(np.int32)


def build_index(codes: np.ndarray, flat_max: int = FLAT_MAX_CODES) -> BinaryIndex:
    """The index kind for this bank size."""
    return FlatIndex(codes) if len(codes) <= flat_max else MultiIndexHash.build(codes)


def load_index(kind: str, arrays: dict[str, np.ndarray]) -> BinaryIndex:
    return FlatIndex(arrays["codes"]) if kind == "flat" else MultiIndexHash.from_arrays(arrays)


def search(index: BinaryIndex, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Search, falling back to a flat scan when a threshold is too wide for the index's chunks."""
    if isinstance(index, MultiIndexHash) and not index.searchable(max_distance):
        return FlatIndex(index.codes).search(queries, max_distance)
    return index.search(queries, max_distance)


def pairs_within(left: np.ndarray, right: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (left index, right index, distance) within `max_distance`: indexes the larger side."""
    if len(left) == 0 or len(right) == 0:
        return _empty()
    if len(left) >= len(right):
        li, ri, d = search(build_index(left), right, max_distance)
        return ri, li, d
    return search(build_index(right), left, max_distance)


def brute_force(codes: np.ndarray, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference: NumPy's best brute force, `np.bitwise_count` over uint64 words, one query at a time."""
    words = np.ascontiguousarray(codes).view(np.uint64)
    query_words = np.ascontiguousarray(queries).view(np.uint64)
    out_q, out_c, out_d = [], [], []
    for i, query in enumerate(query_words):
        distances = np.bitwise_count(words ^ query).sum(axis=1, dtype=np.int32)
        hits = np.flatnonzero(distances <= max_distance)
        out_q.append(np.full(len(hits), i, dtype=np.int64))
        out_c.append(hits.astype(np.int64))
        out_d.append(distances[hits])
    if not out_q:
        return _empty()
    return np.concatenate(out_q), np.concatenate(out_c), np.concatenate(out_d)
