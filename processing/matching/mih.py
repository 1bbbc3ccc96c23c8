"""Exact Hamming range search by multi-index hashing (Norouzi, Punjani and Fleet, 2012).

Each hash is cut into m chunks. If two hashes differ in at most T bits, then by the pigeonhole
principle some chunk differs in at most r = ceil((T+1)/m) - 1 bits. So probing every chunk value
within r bits of the query's chunk, in a table per chunk, finds every candidate; each candidate is
then verified with its full distance. The result is exactly brute force's, never an approximation.

Tables are direct-address: for chunk width w, `starts` has 2**w + 1 offsets into `order` (the
entries sorted by that chunk), so a probe is two array reads. Width grows with the bank (up to 24
bits) so that a bucket holds less than one entry: at 10M PDQ hashes that is 11 chunks, about 3,000
probes a query and about 2,000 candidates, against 10M distances for a flat scan. FAISS's own
IndexBinaryMultiHash keeps its buckets in hash maps, which measured about 0.9 GB per million
256-bit codes; these tables take about 1.2 GB for ten million.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from itertools import combinations

import numpy as np

MAX_WIDTH = 24
MIN_WIDTH = 12
MAX_RADIUS = 3  # beyond this probing costs more than it saves; callers fall back to a flat scan
QUERY_BATCH = 1024


def chunk_widths(bits: int, n_codes: int, max_distance: int | None = None) -> list[int]:
    """Chunk widths for a bank, chosen by a cost model: table probes plus candidates to verify.

    Wider chunks mean fewer candidates but more chunks' worth of probes when the radius has to
    grow; e.g. 100k PDQ hashes do best with 16 chunks of 16 bits probed at radius 1, and 1M with
    12 chunks of 22 bits at radius 2.
    """
    if max_distance is None:
        max_distance = 31 if bits >= 256 else 8
    low = min(MAX_WIDTH, max(MIN_WIDTH, math.ceil(math.log2(max(n_codes, 2)))))
    best: tuple[float, list[int]] | None = None
    for width in range(low, min(MAX_WIDTH, low + 2) + 1):
        widths = _split(bits, math.ceil(bits / width))
        radius = probe_radius(max_distance, len(widths))
        if radius > MAX_RADIUS:
            continue
        probes = sum(len(_flip_masks(w, max(radius, 0))) for w in widths)
        candidates = sum(len(_flip_masks(w, max(radius, 0))) * n_codes / 2**w for w in widths)
        cost = probes + candidates
        if best is None or cost < best[0]:
            best = (cost, widths)
    if best is None:  # a threshold too wide for any chunking: the widest tables, searched flat by the caller
        return _split(bits, math.ceil(bits / MAX_WIDTH))
    return best[1]


def _split(bits: int, chunks: int) -> list[int]:
    """`bits` cut into `chunks` widths that differ by at most one."""
    base, extra = divmod(bits, chunks)
    return [base + 1] * extra + [base] * (chunks - extra)


def probe_radius(max_distance: int, n_chunks: int) -> int:
    """Largest per-chunk distance that some chunk of every match within `max_distance` stays under."""
    return math.ceil((max_distance + 1) / n_chunks) - 1


@cache
def _flip_masks(width: int, radius: int) -> np.ndarray:
    masks = [0]
    for k in range(1, radius + 1):
        masks.extend(sum(1 << i for i in c) for c in combinations(range(width), k))
    return np.array(masks, dtype=np.uint32)


def to_words(codes: np.ndarray) -> np.ndarray:
    """(N, 8k) uint8 -> (N, k) uint64, big-endian, so that bit 0 of the hash is the top bit of word 0."""
    return np.ascontiguousarray(codes).view(">u8").astype(np.uint64)


def chunk_values(words: np.ndarray, widths: list[int]) -> list[np.ndarray]:
    """Cut each row of words into consecutive chunks of the given widths, as uint32."""
    out = []
    offset = 0
    for width in widths:
        word, bit = divmod(offset, 64)
        if bit + width <= 64:
            values = (words[:, word] >> np.uint64(64 - bit - width)) & np.uint64((1 << width) - 1)
        else:
            low = bit + width - 64
            high_part = (words[:, word] & np.uint64((1 << (64 - bit)) - 1)) << np.uint64(low)
            values = high_part | (words[:, word + 1] >> np.uint64(64 - low))
        out.append(values.astype(np.uint32))
        offset += width
    return out


class MultiIndexHash:
    """A multi-index hash over packed binary codes; `search` returns exactly what brute force returns."""

    kind = "mih"

    def __init__(self, codes: np.ndarray, widths: list[int], orders: list[np.ndarray],
                 starts: list[np.ndarray]) -> None:
        self.codes = codes
        self.widths = widths
        self.orders = orders
        self.starts = starts
        self._rows = np.ascontiguousarray(codes).view(np.dtype((np.void, codes.shape[1]))).ravel()

    @property
    def size(self) -> int:
        return len(self.codes)

    @classmethod
    def build(cls, codes: np.ndarray) -> MultiIndexHash:
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        widths = chunk_widths(codes.shape[1] * 8, len(codes))
        def table(width: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            order = np.argsort(values, kind="stable").astype(np.uint32)
            starts = np.zeros((1 << width) + 1, dtype=np.uint32)
            np.cumsum(np.bincount(values, minlength=1 << width), out=starts[1:])
            return order, starts

        values = chunk_values(to_words(codes), widths)
        # The sorts release the GIL, so the chunk tables build on both cores.
        with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
            built = list(pool.map(table, widths, values))
        return cls(codes, widths, [b[0] for b in built], [b[1] for b in built])

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"codes": self.codes, "widths": np.array(self.widths, dtype=np.int32)}
        for i, (order, table) in enumerate(zip(self.orders, self.starts, strict=True)):
            out[f"order{i}"], out[f"starts{i}"] = order, table
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> MultiIndexHash:
        widths = [int(w) for w in arrays["widths"]]
        return cls(arrays["codes"], widths, [arrays[f"order{i}"] for i in range(len(widths))],
                   [arrays[f"starts{i}"] for i in range(len(widths))])

    def searchable(self, max_distance: int) -> bool:
        return probe_radius(max_distance, len(self.widths)) <= MAX_RADIUS

    def search(self, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query index, code index, distance) of every pair within `max_distance`, sorted by query then code."""
        parts = [self._search_batch(queries[i:i + QUERY_BATCH], max_distance, i)
                 for i in range(0, len(queries), QUERY_BATCH)]
        if not parts:
            return _empty()
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))  # type: ignore[return-value]

    def _search_batch(self, queries: np.ndarray, max_distance: int, first: int):
        radius = probe_radius(max_distance, len(self.widths))
        if radius < 0 or self.size == 0 or len(queries) == 0:
            return _empty()
        query_chunks = chunk_values(to_words(queries), self.widths)
        query_ids, code_ids = [], []
        for width, order, table, values in zip(self.widths, self.orders, self.starts, query_chunks, strict=True):
            masks = _flip_masks(width, radius)
            probes = values[:, None] ^ masks[None, :]
            begin, end = table[probes].ravel(), table[probes + 1].ravel()
            counts = (end - begin).astype(np.int64)
            hit = np.flatnonzero(counts)
            if not len(hit):
                continue
            counts, begin = counts[hit], begin[hit].astype(np.int64)
            total = int(counts.sum())
            # Expand each probe's bucket [begin, end) into positions of `order`, without a Python loop.
            positions = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts - begin, counts)
            query_ids.append(np.repeat((hit // len(masks)).astype(np.int64), counts))
            code_ids.append(order[positions])
        if not query_ids:
            return _empty()
        q = np.concatenate(query_ids)
        c = np.concatenate(code_ids).astype(np.int64)
        query_rows = np.ascontiguousarray(queries).view(np.dtype((np.void, queries.shape[1]))).ravel()
        xored = np.bitwise_xor(self._rows.take(c).view(np.uint8), query_rows.take(q).view(np.uint8))
        distances = np.bitwise_count(xored.view(np.uint64).reshape(len(c), -1)).sum(axis=1, dtype=np.int32) \
            if queries.shape[1] % 8 == 0 else np.bitwise_count(xored.reshape(len(c), -1)).sum(axis=1, dtype=np.int32)
        keep = np.flatnonzero(distances <= max_distance)
        # A match is usually found through several chunks: keep each (query, code) pair once.
        pair = q[keep] * self.size + c[keep]
        pair, first_at = np.unique(pair, return_index=True)
        return pair // self.size + first, pair % self.size, distances[keep][first_at]


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32)
