"""Collector throughput: `collect` against a fake Telegram serving N messages at zero latency.

Telegram's rate limits, not the pipeline, must bound collection, so the collector's own cost
(normalise, hash stand-in media, write Parquet, checkpoint) is measured with the network taken out:
the fake client (tests/telegram_fake.py) answers Telethon's own requests from memory. The time spent
inside the client during `collect` is clocked and subtracted, so "collector own" is the pipeline's
cost alone. The baseline, measured in the same run, is the fake alone: the same messages read
through the same Telethon `iter_messages` calls without the collector.

    python bench/bench_collect.py [--messages 100000] [--media-every 0] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import cpu_model, replace_section
from chanwatch.settings import AllowlistEntry, load_settings
from chanwatch.steps.collect import collect
from tests.telegram_fake import (
    FakeTelegramClient,
    FakeWorld,
    jpeg_sizes,
    make_channel,
    make_message,
    photo_media,
)

CHANNEL_ID = 1888777001
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def build_world(n: int, media_every: int) -> FakeWorld:
    """One public channel with `n` posts (text with views and forwards; every `media_every`th a photo)."""
    world = FakeWorld()
    world.add_channel(make_channel(CHANNEL_ID, "bench_channel", "Bench Channel", participants_count=1000),
                      about="benchmark")
    sizes = jpeg_sizes(1) if media_every else None
    messages = []
    for i in range(1, n + 1):
        media = photo_media(900_000_000 + i, sizes) if media_every and i % media_every == 0 else None
        messages.append(make_message(CHANNEL_ID, i, START + dt.timedelta(seconds=30 * i),
                                     f"Post {i}: an ordinary update about nothing in particular #{i % 50}",
                                     views=1000 + i, forwards=i % 7, media=media))
    world.add_messages(messages)
    return world


async def read_only(client: FakeTelegramClient, page: int) -> int:
    """The baseline: the same pages through Telethon's iter_messages, nothing done with them."""
    await client.connect()
    entity = await client.get_entity("bench_channel")
    seen, min_id = 0, 0
    while True:
        got = 0
        async for message in client.iter_messages(entity, limit=page, reverse=True, min_id=min_id,
                                                  offset_date=START if min_id == 0 else None):
            got += 1
            min_id = message.id
        seen += got
        if got < page:
            return seen


class TimedClient(FakeTelegramClient):
    """The fake client, keeping the time spent inside it, so the collector's own time is total minus this."""

    inside_s = 0.0

    def iter_messages(self, *args, **kwargs):
        inner = super().iter_messages(*args, **kwargs)
        client = self

        class Timed:
            def __aiter__(self):
                return self

            async def __anext__(self):
                start = time.perf_counter()
                try:
                    return await inner.__anext__()
                finally:
                    client.inside_s += time.perf_counter() - start

        return Timed()

    async def download_media(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return await super().download_media(*args, **kwargs)
        finally:
            self.inside_s += time.perf_counter() - start


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--media-every", type=int, default=0, help="every Nth post carries a photo (0: none)")
    parser.add_argument("--commit-every", type=int, default=None, help="default: the [telegram] setting")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()

    t0 = time.perf_counter()
    world = build_world(args.messages, args.media_every)
    built_s = time.perf_counter() - t0
    rss_world = peak_rss_mb()

    t0 = time.perf_counter()
    read = asyncio.run(read_only(FakeTelegramClient(world), 100))
    baseline_s = time.perf_counter() - t0
    assert read == args.messages, read

    with tempfile.TemporaryDirectory(prefix="bench-collect-") as tmp:
        settings = load_settings(storage=str(Path(tmp) / "data"), environ={})
        settings = dataclasses.replace(
            settings, allowlist=(AllowlistEntry("bench_channel", "bench", "bench", dt.date(2026, 1, 1),
                                                CHANNEL_ID),),
            telegram=dataclasses.replace(settings.telegram, requests_per_minute=1e9, downloads_per_minute=1e9,
                                         commit_every=args.commit_every or settings.telegram.commit_every))
        now = START + dt.timedelta(seconds=30 * args.messages + 3600)
        client = TimedClient(world)
        t0 = time.perf_counter()
        result = collect(settings, client, now=now, since=START)
        total_s = time.perf_counter() - t0
        counts = result.channels[0].counts
        files = len(list((Path(tmp) / "data").rglob("*.parquet")))
    assert result.channels[0].status == "ok" and counts["messages_new"] == args.messages, result.channels[0]
    own_s = total_s - client.inside_s
    rows = [
        ("fake Telegram alone (baseline: iter_messages over the fake, no collector)", baseline_s,
         args.messages / baseline_s),
        ("`collect`, total (fake + collector)", total_s, args.messages / total_s),
        ("time inside the fake client during `collect`", client.inside_s, args.messages / client.inside_s),
        ("collector's own cost (total - time inside the client)", own_s, args.messages / own_s),
    ]
    media = f", a photo every {args.media_every} posts ({counts['media_hashed']} hashed)" if args.media_every else \
        ", no media"
    lines = [f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {cpu_model()}; {args.messages:,} posts"
             f"{media}; world built in {built_s:.1f} s.", "",
             f"Command: `python bench/bench_collect.py --messages {args.messages}"
             + (f" --media-every {args.media_every}" if args.media_every else "") + " --markdown docs/benchmarks.md`",
             "", "| what | seconds | messages/s |", "|---|---:|---:|"]
    lines += [f"| {name} | {s:.1f} | {rate:,.0f} |" for name, s, rate in rows]
    lines += ["", f"Peak RSS of the process: {peak_rss_mb():.0f} MB (of which {rss_world:.0f} MB holding the fake "
              f"world's {args.messages:,} TL messages before collection); {files} Parquet files written; "
              f"{result.channels[0].counts['messages_written']:,} rows new.",
              "", "Target: at least 10,000 messages/s of collector's own cost without media: "
              + ("PASS" if args.media_every or args.messages / own_s >= 10_000 else "FAIL") + "."]
    print("\n".join(lines))
    if args.markdown:
        title = "## Live collection throughput" + (" (with media)" if args.media_every else "")
        replace_section(args.markdown, title, title + "\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
