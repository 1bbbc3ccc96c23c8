"""Exact lookup for MD5 and SHA-256: a sorted array of fixed-width byte strings and a binary search."""

from __future__ import annotations

import numpy as np


class ExactIndex:
    kind = "exact"

    def __init__(self, sorted_keys: np.ndarray, positions: np.ndarray) -> None:
        self.sorted_keys = sorted_keys  # (N,) bytes dtype, ascending
        self.positions = positions  # entry index of each sorted key

    @property
    def size(self) -> int:
        return len(self.sorted_keys)

    @classmethod
    def build(cls, codes: np.ndarray) -> ExactIndex:
        keys = np.ascontiguousarray(codes, dtype=np.uint8).view(f"S{codes.shape[1]}").ravel()
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], order.astype(np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"sorted_keys": self.sorted_keys.view(np.uint8).reshape(self.size, -1), "positions": self.positions}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ExactIndex:
        keys = arrays["sorted_keys"]
        return cls(np.ascontiguousarray(keys).view(f"S{keys.shape[1]}").ravel(), arrays["positions"])

    def search(self, queries: np.ndarray, max_distance: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query index, entry index, 0) for every query equal to an entry."""
        if self.size == 0 or len(queries) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32)
        keys = np.ascontiguousarray(queries, dtype=np.uint8).view(f"S{queries.shape[1]}").ravel()
        at = np.searchsorted(self.sorted_keys, keys).clip(0, self.size - 1)
        # Byte strings compare with trailing NULs stripped, so compare the raw bytes to be exact.
        raw_sorted = self.sorted_keys.view(np.uint8).reshape(self.size, -1)
        raw_queries = keys.view(np.uint8).reshape(len(keys), -1)
        hit = np.flatnonzero((raw_sorted[at] == raw_queries).all(axis=1))
        return hit.astype(np.int64), self.positions[at[hit]], np.zeros(len(hit), np.int32)
