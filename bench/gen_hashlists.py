"""Synthetic, seeded inputs for bench/bench_hashlists.py: random PDQ banks, planted near-duplicates, media rows.

Random 256-bit codes stand in for PDQ hashes: the index only sees bits, and two random codes are
within 31 bits of each other with probability about 1e-36, so a planted near-duplicate (a bank entry
with k of its bits flipped) is the only thing a query can match. That makes the right answer known
without trusting the code under test: planted query -> its source entry at distance exactly k.

Hex is produced here with NumPy rather than with chanwatch's own converters, so a bug in those
cannot make the generated file and the expected answers agree by accident.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PDQ_BYTES = 32
PDQ_BITS = 8 * PDQ_BYTES
HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
WRITE_CHUNK = 1_000_000  # rows of hex built at a time: bounds the generator's memory at 10M entries
BUCKET_SIZE = 50_000  # message ids per media file, as storage.schemas.BUCKET_SIZE


def random_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 32) uint8 random codes: PDQ-shaped, uniformly random bits."""
    return rng.integers(0, 256, (n, PDQ_BYTES), dtype=np.uint8)


def flip_bits(rng: np.random.Generator, codes: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """Copies of `codes` with exactly ks[i] distinct random bits flipped in row i (so distance = ks[i])."""
    order = np.argsort(rng.random((len(codes), PDQ_BITS)), axis=1)  # a random permutation of bit positions per row
    mask = np.zeros((len(codes), PDQ_BITS), dtype=bool)
    np.put_along_axis(mask, order, np.arange(PDQ_BITS)[None, :] < ks[:, None], axis=1)
    return codes ^ np.packbits(mask, axis=1)


@dataclass
class Queries:
    """Lookup queries: the first `planted` are near-duplicates of bank entries, the rest random."""

    codes: np.ndarray  # (count, 32) uint8
    sources: np.ndarray  # bank position each planted query was made from (length planted)
    ks: np.ndarray  # bits flipped in each planted query (length planted)

    @property
    def planted(self) -> int:
        return len(self.sources)


def make_queries(rng: np.random.Generator, bank: np.ndarray, count: int, max_flip: int) -> Queries:
    """`count` queries, half planted (k uniform in 1..max_flip, distinct sources), half random."""
    planted = count // 2
    sources = rng.choice(len(bank), planted, replace=False).astype(np.int64)
    ks = rng.integers(1, max_flip + 1, planted).astype(np.int32)
    near = flip_bits(rng, bank[sources], ks)
    return Queries(np.concatenate([near, random_codes(rng, count - planted)]), sources, ks)


def hex_chars(codes: np.ndarray) -> np.ndarray:
    """(n, 32) uint8 -> (n, 64) uint8 ASCII lowercase hex."""
    chars = np.empty((len(codes), 2 * codes.shape[1]), dtype=np.uint8)
    chars[:, 0::2] = HEX_DIGITS[codes >> 4]
    chars[:, 1::2] = HEX_DIGITS[codes & 15]
    return chars


def hex_strings(codes: np.ndarray) -> list[str]:
    return [row.tobytes().decode("ascii") for row in hex_chars(codes)]


def hex_array(codes: np.ndarray) -> pa.StringArray:
    """Arrow strings of lowercase hex, built from one buffer: a Python str per row is slow at 1M rows."""
    chars = hex_chars(codes)
    width = chars.shape[1]
    offsets = np.arange(0, len(codes) * width + 1, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), len(codes), [None, pa.py_buffer(offsets), pa.py_buffer(chars)])


def write_hex_file(codes: np.ndarray, path: Path) -> int:
    """The bank as a bare-hex list: one 64-hex lowercase code per line. Returns the file size in bytes."""
    with path.open("wb") as out:
        for start in range(0, len(codes), WRITE_CHUNK):
            chars = hex_chars(codes[start:start + WRITE_CHUNK])
            lines = np.empty((len(chars), chars.shape[1] + 1), dtype=np.uint8)
            lines[:, :-1] = chars
            lines[:, -1] = ord("\n")
            out.write(lines.tobytes())
    return path.stat().st_size


# --- media rows for `chanwatch match` -------------------------------------------------------------


@dataclass(frozen=True)
class MediaLayout:
    """How chanwatch stores media rows: the schema, the file metadata and Parquet options, and the channel."""

    schema: pa.Schema
    metadata: dict[str, str]
    parquet_options: dict
    channel_id: int


@dataclass
class MediaPlan:
    """Where the near-duplicates were planted among the media rows."""

    rows: int
    files: int
    message_ids: np.ndarray  # media rows carrying a near-duplicate
    sources: np.ndarray  # the bank position each was made from
    ks: np.ndarray  # bits flipped

    @property
    def planted(self) -> int:
        return len(self.message_ids)


def media_table(rng: np.random.Generator, message_ids: np.ndarray, pdq: np.ndarray, channel_id: int,
                month_start: dt.datetime, span_us: int, total_rows: int, schema: pa.Schema) -> pa.Table:
    """MEDIA rows for a block of message ids: a hashed photo each, with random exact hashes and pHash/dHash."""
    n = len(message_ids)
    start_us = int(month_start.timestamp() * 1_000_000)
    dates = start_us + message_ids * (span_us // max(total_rows, 1))
    columns = {
        "channel_id": pa.array(np.full(n, channel_id, dtype=np.int64)),
        "message_id": pa.array(message_ids.astype(np.int64)),
        "media_index": pa.array(np.zeros(n, dtype=np.int32)),
        "date": pa.array(dates.astype(np.int64)).cast(pa.timestamp("us", tz="UTC")),
        "media_kind": pa.array(["photo"] * n, pa.string()),
        "mime_type": pa.array(["image/jpeg"] * n, pa.string()),
        "file_size": pa.array(rng.integers(20_000, 400_000, n, dtype=np.int64)),
        "width": pa.array(np.full(n, 1280, dtype=np.int32)),
        "height": pa.array(np.full(n, 960, dtype=np.int32)),
        "hashed_variant": pa.array(["full"] * n, pa.string()),
        "md5": hex_array(rng.integers(0, 256, (n, 16), dtype=np.uint8)),
        "sha256": hex_array(rng.integers(0, 256, (n, 32), dtype=np.uint8)),
        "pdq": hex_array(pdq),
        "pdq_quality": pa.array(np.full(n, 90, dtype=np.int32)),
        "phash": hex_array(rng.integers(0, 256, (n, 8), dtype=np.uint8)),
        "dhash": hex_array(rng.integers(0, 256, (n, 8), dtype=np.uint8)),
        "status": pa.array(["hashed"] * n, pa.string()),
        "hashed_at": pa.array(np.full(n, start_us, dtype=np.int64)).cast(pa.timestamp("us", tz="UTC")),
        "run_id": pa.array(["bench-hashlists"] * n, pa.string()),
    }
    columns["hashed_bytes"] = columns["file_size"]
    table = pa.table({name: columns.get(name, pa.nulls(n, schema.field(name).type)) for name in schema.names})
    return table.cast(schema)


def write_media(root: Path, layout: MediaLayout, bank: np.ndarray, rows: int, seed: int, near_share: float,
                max_flip: int) -> MediaPlan:
    """Media Parquet files for message ids 1..rows, laid out as chanwatch does (one file per 50,000 ids).

    About `near_share` of the rows carry a near-duplicate of a distinct bank entry; the rest are random.
    """
    rng = np.random.default_rng([seed, rows, len(bank)])
    planted = min(max(1, round(rows * near_share)), len(bank), rows)
    message_ids = np.sort(rng.choice(np.arange(1, rows + 1), planted, replace=False))
    sources = rng.choice(len(bank), planted, replace=False).astype(np.int64)
    ks = rng.integers(1, max_flip + 1, planted).astype(np.int32)
    pdq = random_codes(rng, rows)
    pdq[message_ids - 1] = flip_bits(rng, bank[sources], ks)
    month_start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    span_us = 27 * 86_400 * 1_000_000  # every row in October 2026
    ids = np.arange(1, rows + 1, dtype=np.int64)
    files = 0
    for bucket in np.unique(ids // BUCKET_SIZE):
        block = ids[ids // BUCKET_SIZE == bucket]
        table = media_table(rng, block, pdq[block - 1], layout.channel_id, month_start, span_us, rows, layout.schema)
        path = root / "media" / f"month={month_start:%Y-%m}" / f"c{layout.channel_id}-b{int(bucket):05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.replace_schema_metadata(layout.metadata), path, **layout.parquet_options)
        files += 1
    return MediaPlan(rows, files, message_ids, sources, ks)
