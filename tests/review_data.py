"""Synthetic datasets for the review app's tests and load benchmark: matches with their messages.

Written straight as Parquet files in the datasets' layout (the pipeline's own writers are tested
elsewhere); benign text, fictional channels, hashes that are random hex.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from storage.schemas import CHANNELS, MATCHES, MEDIA, MESSAGES

HOSTILE_TEXT = '<script>document.body.dataset.pwned = "1"</script><img src=x onerror="alert(1)"> & "quotes"'
BASE = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class SyntheticMatch:
    channel_id: int
    message_id: int
    media_index: int
    list_name: str
    signal_type: str
    entry_hash: str
    distance: int
    category: str
    text: str = "benign test post"
    fwd_from: tuple[int, int] | None = None
    sha256: str | None = None


# Channels of the fake Telegram (tests.telegram_fake.demo_world) keep their real usernames, so a
# recheck through the fake client finds them.
KNOWN_USERNAMES = {1888000001: "fake_news_demo", 1888000004: "fake_source_demo"}


def channel_name(channel_id: int) -> str:
    return KNOWN_USERNAMES.get(channel_id, f"fake_channel_{channel_id}")


def _hex(seed: str, n: int = 64) -> str:
    return (hashlib.sha256(seed.encode()).hexdigest() * 2)[:n]


def match_id(m: SyntheticMatch) -> str:
    key = f"{m.channel_id}:{m.message_id}:{m.media_index}:{m.list_name}:{m.signal_type}:{m.entry_hash}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def write_datasets(root: Path, matches: list[SyntheticMatch], *, file_tag: str = "a",
                   extra_messages: list[dict] | None = None) -> None:
    """Write matches and their messages, media and channels under `root` (one file each per call)."""
    def date_of(m: SyntheticMatch) -> dt.datetime:
        return BASE + dt.timedelta(minutes=m.message_id)

    match_rows = [{
        "match_id": match_id(m), "channel_id": m.channel_id, "message_id": m.message_id, "media_index": m.media_index,
        "date": date_of(m), "media_kind": "photo", "signal_type": m.signal_type, "distance": m.distance,
        "threshold": 31 if m.signal_type == "pdq" else 0, "query_match_percent": None, "compared_match_percent": None,
        "media_hash": _hex(f"media{m.channel_id}:{m.message_id}:{m.media_index}"), "list_name": m.list_name,
        "list_version": 1, "entry_id": f"entry-{m.entry_hash[:8]}", "entry_hash": m.entry_hash,
        "category": m.category, "message_url": f"https://t.me/{channel_name(m.channel_id)}/{m.message_id}",
        "matched_at": BASE + dt.timedelta(days=30, seconds=m.message_id), "run_id": "test"} for m in matches]
    seen: dict[tuple[int, int], SyntheticMatch] = {}
    for m in matches:
        seen.setdefault((m.channel_id, m.message_id), m)
    message_rows = [{
        "channel_id": c, "message_id": mid, "date": date_of(m), "text": m.text,
        "fwd_from_channel_id": m.fwd_from[0] if m.fwd_from else None,
        "fwd_from_message_id": m.fwd_from[1] if m.fwd_from else None,
        "fwd_from_name": channel_name(m.fwd_from[0]) if m.fwd_from else None,
        "media_kind": "photo", "url": f"https://t.me/{channel_name(c)}/{mid}", "message_type": "message",
        "source": "telegram", "collected_at": BASE, "run_id": "test"} for (c, mid), m in seen.items()]
    message_rows += extra_messages or []
    media_rows = [{"channel_id": m.channel_id, "message_id": m.message_id, "media_index": m.media_index,
                   "date": date_of(m), "media_kind": "photo", "status": "hashed",
                   "sha256": m.sha256 or _hex(f"file{m.channel_id}:{m.message_id}:{m.media_index}")}
                  for m in matches]
    channel_ids = sorted({m.channel_id for m in matches} | {r["channel_id"] for r in message_rows})
    channel_rows = [{"channel_id": c, "snapshot_date": dt.date(2026, 11, 1), "username": channel_name(c),
                     "title": f"Fake channel {c}", "source": "telegram", "snapshot_at": BASE, "run_id": "test"}
                    for c in channel_ids]
    for spec, rows in ((MATCHES, match_rows), (MESSAGES, message_rows), (MEDIA, media_rows),
                       (CHANNELS, channel_rows)):
        if not rows:
            continue
        path = root / spec.name / "month=2026-10" / f"synthetic-{file_tag}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=spec.schema), path)


def many_matches(n_items: int, *, channels: int = 50, lists: tuple[str, ...] = ("list-a", "list-b"),
                 categories: tuple[str, ...] = ("deepfake", "ncii"), seed: int = 7) -> list[SyntheticMatch]:
    """`n_items` media items, each matching one or two entries; entries repeat across channels (spread)."""
    rng = random.Random(seed)
    entries = [_hex(f"entry{i}") for i in range(max(1, n_items // 20))]
    out = []
    for i in range(n_items):
        channel = 1000 + i % channels
        entry = rng.choice(entries)
        out.append(SyntheticMatch(channel, 10 + i, 0, rng.choice(lists), "pdq", entry, rng.randint(0, 31),
                                  rng.choice(categories), text=f"post {i}"))
        if i % 4 == 0:
            out.append(SyntheticMatch(channel, 10 + i, 0, lists[0], "md5", _hex(f"md5-{entry}", 32), 0,
                                      categories[0], text=f"post {i}"))
    return out
