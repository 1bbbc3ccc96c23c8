"""Hex hashes <-> packed bit arrays (one row of bytes per hash, most significant bit first, as PDQ prints)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF", start=10):
    _NIBBLE[_c] = _i
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_matrix_to_codes(chars: np.ndarray) -> np.ndarray:
    """(N, 2k) uint8 ASCII hex -> (N, k) uint8; raises ValueError naming the first bad row."""
    nibbles = _NIBBLE[chars]
    bad = (nibbles == 255).any(axis=1)
    if bad.any():
        raise ValueError(int(np.argmax(bad)))
    return (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]


def hex_to_codes(hexes: Sequence[str], n_bytes: int) -> np.ndarray:
    """Validated, lowercase-agnostic hex strings of one length -> (N, n_bytes) uint8."""
    if not hexes:
        return np.zeros((0, n_bytes), dtype=np.uint8)
    joined = "".join(hexes).encode("ascii")
    return hex_matrix_to_codes(np.frombuffer(joined, dtype=np.uint8).reshape(len(hexes), 2 * n_bytes))


def codes_to_hex_array(codes: np.ndarray) -> pa.StringArray:
    """(N, k) uint8 -> Arrow strings of 2k lowercase hex digits, built from buffers (fast at 10M rows)."""
    n, k = codes.shape
    chars = np.empty((n, 2 * k), dtype=np.uint8)
    chars[:, 0::2] = _HEX_DIGITS[codes >> 4]
    chars[:, 1::2] = _HEX_DIGITS[codes & 15]
    offsets = np.arange(0, n * 2 * k + 1, 2 * k, dtype=np.int32 if n * 2 * k < 2**31 else np.int64)
    kind = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    array = pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())])
    return array.cast(pa.string()) if kind != pa.string() else array


def hex_array_to_codes(values: pa.Array | pa.ChunkedArray, n_bytes: int) -> np.ndarray:
    """Arrow strings of 2*n_bytes hex digits (no nulls) -> (N, n_bytes) uint8, straight from the buffers.

    This is how a million media rows become a query batch without a million Python strings.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    if len(values) == 0:
        return np.zeros((0, n_bytes), dtype=np.uint8)
    values = values.cast(pa.large_string())
    if values.null_count:
        raise ValueError("null hash in a query batch")
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset:values.offset + len(values) + 1]
    if not (np.diff(offsets) == 2 * n_bytes).all():
        raise ValueError(f"hashes must have {2 * n_bytes} hex digits")
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return hex_matrix_to_codes(data.reshape(len(values), 2 * n_bytes))


def hamming_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distance of two (N, k) uint8 arrays."""
    return np.bitwise_count(a ^ b).sum(axis=1, dtype=np.int32)
