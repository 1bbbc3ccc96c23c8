"""Generate a storage root for the aggregates benchmark: messages, media and matches in the datasets' layout.

Vectorised with NumPy and written with pyarrow, one channel at a time (memory stays at one channel's rows):
`<root>/<dataset>/month=YYYY-MM/c<channel>-b<bucket>.parquet`, as the collector writes them. Channel sizes
are skewed (log-normal); posts are spread uniformly over the days. Per post: counters, reactions (40% of
posts), forwards (10%: 80% from a known channel, 20% by name only), media (30% photo, 5% video; 95% hashed),
service messages (0.2%), deleted posts (1%). About 0.5% of hashed media match one of two lists.

`add_day` appends one more day of posts to every channel, rewriting each channel's last files (what the
collector does when a new day arrives), for the incremental measurement.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.files import PARQUET_OPTIONS, write_parquet_atomic
from storage.schemas import BUCKET_SIZE, MATCHES, MEDIA, MESSAGES, REACTION

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAY_US = 86_400 * 1_000_000
FIRST_CHANNEL = 1_600_000_000
SOURCES = 2_000
NAMES = 300
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
EMOJI = np.array(["👍", "❤", "🔥", "😢", "🤔"])


@dataclass(frozen=True)
class Plan:
    messages: int
    channels: int
    days: int
    seed: int

    def sizes(self) -> np.ndarray:
        """Messages per channel: log-normal shares of the total, at least one post a day each."""
        rng = np.random.default_rng(self.seed)
        weights = rng.lognormal(0.0, 0.8, self.channels)
        sizes = np.maximum(np.floor(weights / weights.sum() * self.messages).astype(np.int64), self.days)
        sizes[np.argmax(sizes)] += self.messages - sizes.sum()  # exact total
        return sizes

    def channel_id(self, index: int) -> int:
        return FIRST_CHANNEL + index


def hex_array(rng: np.random.Generator, n: int, nbytes: int) -> pa.Array:
    """`n` random lowercase hex strings of `nbytes` bytes, built from one buffer."""
    raw = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    chars = np.empty((n, 2 * nbytes), dtype=np.uint8)
    chars[:, 0::2] = HEX[raw >> 4]
    chars[:, 1::2] = HEX[raw & 15]
    offsets = np.arange(0, n * 2 * nbytes + 1, 2 * nbytes, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())])


def _strings(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _where(mask: np.ndarray, values: pa.Array | np.ndarray, type_: pa.DataType) -> pa.Array:
    """`values` where `mask`, null elsewhere."""
    return pa.array(values, type_, mask=~mask) if isinstance(values, np.ndarray) else \
        pc.if_else(pa.array(mask), values, pa.nulls(len(mask), type_))


def _ts(micros: np.ndarray) -> pa.Array:
    return pa.array(micros, pa.timestamp("us", tz="UTC"))


def _reactions(rng: np.random.Generator, n: int) -> pa.Array:
    per_row = np.where(rng.random(n) < 0.4, rng.integers(1, 4, n), 0)
    offsets = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int32)
    total = int(offsets[-1])
    flat = pa.StructArray.from_arrays([pa.array(EMOJI[rng.integers(0, len(EMOJI), total)]),
                                       pa.array(rng.poisson(20, total) + 1, pa.int64())], fields=list(REACTION))
    return pa.ListArray.from_arrays(pa.array(offsets), flat, type=pa.list_(REACTION))


def channel_tables(plan: Plan, index: int, first_id: int, dates: np.ndarray) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Messages, media and matches of one channel for posts `first_id...` at `dates` (sorted, microseconds)."""
    rng = np.random.default_rng((plan.seed, index, first_id))
    n = len(dates)
    channel = plan.channel_id(index)
    ids = np.arange(first_id, first_id + n, dtype=np.int64)
    id_text = pc.cast(pa.array(ids), pa.string())
    service = rng.random(n) < 0.002
    kind_draw = rng.random(n)
    kind_code = np.where(kind_draw < 0.30, 0, np.where(kind_draw < 0.35, 1, -1))
    kind_code[service] = -1
    has_media = kind_code >= 0
    media_kind = pa.array(["photo", "video"]).take(pa.array(np.maximum(kind_code, 0))).to_numpy(
        zero_copy_only=False).astype(object)
    media_kind[~has_media] = None
    forwarded = (rng.random(n) < 0.10) & ~service
    by_name = forwarded & (rng.random(n) < 0.20)
    by_id = forwarded & ~by_name
    source = (rng.zipf(1.3, n) - 1) % SOURCES
    name = rng.integers(0, NAMES, n)
    fwd_name = pc.if_else(pa.array(by_id), _strings("Source channel ", pc.cast(pa.array(source), pa.string())),
                          _strings("Hidden forwarder ", pc.cast(pa.array(name), pa.string())))
    collected = dates + 3_600_000_000
    messages = pa.table({
        "channel_id": pa.array(np.full(n, channel), pa.int64()),
        "message_id": pa.array(ids),
        "date": _ts(dates),
        "edit_date": _where(rng.random(n) < 0.05, dates + 3_600_000_000, pa.timestamp("us", tz="UTC")),
        "text": _strings("Post ", id_text, ": an ordinary update about nothing in particular #tag"),
        "views": pa.array(rng.integers(100, 50_000, n), pa.int64()),
        "forwards": pa.array(rng.poisson(3, n), pa.int64()),
        "replies": pa.array(rng.poisson(1, n), pa.int64()),
        "reactions": _reactions(rng, n),
        "grouped_id": pa.nulls(n, pa.int64()),
        "reply_to_message_id": pa.nulls(n, pa.int64()),
        "fwd_from_channel_id": _where(by_id, 1_500_000_000 + source, pa.int64()),
        "fwd_from_message_id": _where(by_id, rng.integers(1, 100_000, n), pa.int64()),
        "fwd_from_name": _where(forwarded, fwd_name, pa.string()),
        "post_author": pa.nulls(n, pa.string()),
        "media_kind": _where(has_media, media_kind, pa.string()),
        "urls": pa.nulls(n, pa.list_(pa.string())),
        "hashtags": pa.nulls(n, pa.list_(pa.string())),
        "mentions": pa.nulls(n, pa.list_(pa.string())),
        "url": _strings(f"https://t.me/bench_c{index}/", id_text),
        "message_type": pa.array(np.where(service, "service", "message")),
        "service_action": _where(service, np.full(n, "edit_title"), pa.string()),
        "deleted": pa.array(rng.random(n) < 0.01),
        "source": pa.array(np.full(n, "telegram")),
        "raw_json": _strings('{"_":"Message","id":', id_text, "}"),
        "raw_schema": pa.array(np.full(n, "telegram-layer-201")),
        "collected_at": _ts(collected),
        "run_id": pa.array(np.full(n, "bench-gen")),
    }, schema=MESSAGES.schema)

    with_media = np.flatnonzero(has_media)
    m = len(with_media)
    status_draw = rng.random(m)
    status = np.where(status_draw < 0.95, "hashed", np.where(status_draw < 0.99, "skipped", "failed"))
    hashed = status == "hashed"
    kinds = media_kind[with_media].astype(str)
    media = pa.table({
        "channel_id": pa.array(np.full(m, channel), pa.int64()),
        "message_id": pa.array(ids[with_media]),
        "media_index": pa.array(np.zeros(m, np.int32)),
        "date": _ts(dates[with_media]),
        "media_kind": pa.array(kinds),
        "mime_type": pa.array(np.where(kinds == "photo", "image/jpeg", "video/mp4")),
        "file_name": pa.nulls(m, pa.string()),
        "file_size": pa.array(rng.integers(20_000, 5_000_000, m), pa.int64()),
        "width": pa.array(np.full(m, 1280, np.int32)),
        "height": pa.array(np.full(m, 960, np.int32)),
        "duration_s": _where(kinds == "video", rng.random(m) * 60, pa.float64()),
        "source_file_id": pa.array(rng.integers(1, 2**62, m), pa.int64()),
        "hashed_variant": _where(hashed, np.full(m, "x"), pa.string()),
        "hashed_bytes": _where(hashed, rng.integers(20_000, 500_000, m), pa.int64()),
        "md5": pc.if_else(pa.array(hashed), hex_array(rng, m, 16), pa.nulls(m, pa.string())),
        "sha256": pc.if_else(pa.array(hashed), hex_array(rng, m, 32), pa.nulls(m, pa.string())),
        "pdq": pc.if_else(pa.array(hashed), hex_array(rng, m, 32), pa.nulls(m, pa.string())),
        "pdq_quality": _where(hashed, rng.integers(50, 101, m).astype(np.int32), pa.int32()),
        "phash": pc.if_else(pa.array(hashed), hex_array(rng, m, 8), pa.nulls(m, pa.string())),
        "dhash": pc.if_else(pa.array(hashed), hex_array(rng, m, 8), pa.nulls(m, pa.string())),
        "frames": pa.nulls(m, MEDIA.schema.field("frames").type),
        "frame_count": pa.nulls(m, pa.int64()),
        "status": pa.array(status),
        "status_reason": _where(~hashed, np.full(m, "bench"), pa.string()),
        "hashed_at": _ts(collected[with_media]),
        "run_id": pa.array(np.full(m, "bench-gen")),
    }, schema=MEDIA.schema)

    hit = with_media[hashed & (rng.random(m) < 0.005)]
    k = len(hit)
    list_name = np.where(rng.random(k) < 0.7, "hotline", "partner")
    matches = pa.table({
        "match_id": hex_array(rng, k, 16),
        "channel_id": pa.array(np.full(k, channel), pa.int64()),
        "message_id": pa.array(ids[hit]),
        "media_index": pa.array(np.zeros(k, np.int32)),
        "date": _ts(dates[hit]),
        "media_kind": pa.array(media_kind[hit].astype(str)),
        "signal_type": pa.array(np.where(rng.random(k) < 0.9, "pdq", "md5")),
        "distance": pa.array(rng.integers(0, 32, k).astype(np.int32)),
        "threshold": pa.array(np.full(k, 31, np.int32)),
        "query_match_percent": pa.nulls(k, pa.float64()),
        "compared_match_percent": pa.nulls(k, pa.float64()),
        "media_hash": hex_array(rng, k, 32),
        "list_name": pa.array(list_name),
        "list_version": pa.array(np.ones(k, np.int32)),
        "entry_id": hex_array(rng, k, 8),
        "entry_hash": hex_array(rng, k, 32),
        "category": pa.array(np.where(list_name == "hotline", "ncii", "deepfake")),
        "message_url": pa.array(messages["url"].take(pa.array(hit))),
        "matched_at": _ts(collected[hit]),
        "run_id": pa.array(np.full(k, "bench-gen")),
    }, schema=MATCHES.schema)
    return messages, media, matches


def _file_keys(table: pa.Table) -> np.ndarray:
    """Per row, (month index * 10^6 + bucket): rows are in id order, so each key is a contiguous run."""
    micros = table["date"].cast(pa.int64()).to_numpy()
    months = (micros.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64))
    return months * 1_000_000 + table["message_id"].to_numpy() // BUCKET_SIZE


def _month(key: int) -> str:
    return str(np.datetime64(int(key // 1_000_000), "M"))


def write_split(root: Path, spec, channel: int, table: pa.Table, *, append: bool = False) -> int:
    """Write a channel's rows into one file per (month, id bucket); with `append`, onto what is there."""
    if table.num_rows == 0:
        return 0
    keys = _file_keys(table)
    cuts = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(keys)]])
    for start, end in zip(starts, ends, strict=True):
        key = int(keys[start])
        path = root / spec.name / f"month={_month(key)}" / f"c{channel}-b{key % 1_000_000:05d}.parquet"
        part = table.slice(start, end - start)
        if append and path.exists():
            write_parquet_atomic(path, pa.concat_tables([pq.read_table(path, schema=spec.schema), part]))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, path, **PARQUET_OPTIONS)
    return len(starts)


def channel_dates(plan: Plan, index: int, n: int, first_day: int, days: int) -> np.ndarray:
    rng = np.random.default_rng((plan.seed, index, first_day, 7))
    start = int(START.timestamp() * 1_000_000) + first_day * DAY_US
    return np.sort(rng.integers(start, start + days * DAY_US, n))


def generate(root: Path, plan: Plan, progress=None) -> dict[str, int]:
    """Write the whole root; returns rows and files per dataset."""
    counts = {"messages": 0, "media": 0, "matches": 0, "files": 0}
    for index, n in enumerate(plan.sizes()):
        tables = channel_tables(plan, index, 1, channel_dates(plan, index, int(n), 0, plan.days))
        for spec, table in zip((MESSAGES, MEDIA, MATCHES), tables, strict=True):
            counts["files"] += write_split(root, spec, plan.channel_id(index), table)
            counts[spec.name] += table.num_rows
        if progress:
            progress(index + 1, plan.channels)
    return counts


def add_day(root: Path, plan: Plan) -> dict[str, int]:
    """One more day of posts on every channel (its share of a day), appended to the channels' files."""
    counts = {"messages": 0, "media": 0, "matches": 0, "files": 0}
    for index, n in enumerate(plan.sizes()):
        per_day = max(1, int(n) // plan.days)
        tables = channel_tables(plan, index, int(n) + 1, channel_dates(plan, index, per_day, plan.days, 1))
        for spec, table in zip((MESSAGES, MEDIA, MATCHES), tables, strict=True):
            counts["files"] += write_split(root, spec, plan.channel_id(index), table, append=True)
            counts[spec.name] += table.num_rows
    return counts
