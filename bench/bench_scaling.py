"""Capacity figures for docs/scaling.md: what one collector, one hashing core, one matcher and one aggregate
process handle on this machine, each measured here and extrapolated by the method printed beside it.

    python bench/bench_scaling.py [--parts collect,hash,match,aggregate] [--markdown docs/scaling.md]

- collect: the collector's own cost per message with media (the fake Telegram, network taken out, as in
  bench_collect.py), and what one channel costs per hourly run in Telegram requests and downloads,
  counted by the fake client in a simulated steady state. With the per-account budgets ([telegram]
  requests_per_minute, downloads_per_minute) that gives messages/s and channels per account.
- hash: `chanwatch hash --workers 1` against the naive hasher (bench/naive_hash.py) on the same
  photo-sized JPEGs, whole processes, in the same run.
- match: a 100,000,000-entry bank built in chunks (ten 10M-entry lists, each imported by `chanwatch
  hashlist import`; one 100M import would need about 38 GB at its peak, 10x the measured 10M import).
  Batched lookups over all ten in one process against one 10M chunk alone (the baseline, same run),
  then `chanwatch match` over generated media rows against all of it.
- aggregate: full builds of `chanwatch aggregate` at two sizes, then a straight line through them to
  100M messages (the build reads each input file once).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH_DIR))

from bench_collect import TimedClient, build_world  # noqa: E402
from bench_hash import ensure_photos  # noqa: E402
from bench_hashlists import PDQ_THRESHOLD, proc_status_kb, rss_mb, run_report  # noqa: E402
from common import Launched, cpu_model, dir_bytes, measure_logged, replace_section  # noqa: E402
from gen_aggregate import Plan, generate  # noqa: E402
from gen_hashlists import (  # noqa: E402
    MediaLayout,
    flip_bits,
    random_codes,
    write_hex_file,
    write_media,
)

from chanwatch.settings import AllowlistEntry, load_settings  # noqa: E402
from chanwatch.steps.collect import collect  # noqa: E402
from collectors.telegram.settings import TelegramSettings  # noqa: E402
from processing.matching.binary_index import search  # noqa: E402
from storage.files import PARQUET_OPTIONS  # noqa: E402
from storage.hashbanks import HashBanks  # noqa: E402
from storage.schemas import MEDIA  # noqa: E402
from storage.store import Store  # noqa: E402
from tests.telegram_fake import FakeTelegramClient, FakeWorld, jpeg_sizes, make_channel, make_message, photo_media  # noqa: E402

DEFAULT_CHANWATCH = REPO / ".venv" / "bin" / "chanwatch"
TARGET_BANK = 100_000_000
HOUR = dt.timedelta(hours=1)


def measure(name: str, cmd: list[str], workdir: Path) -> tuple[Launched, str, str]:
    """A whole process, timed, with its peak RSS; a failed one stops the benchmark."""
    done, out, err = measure_logged(name, cmd, workdir)
    if not done.ok:
        raise SystemExit(f"{name} failed: {err[-2000:]}")
    return done, out, err


# --- collect ------------------------------------------------------------------------------------------

def bench_settings(root: Path, names: list[tuple[str, int]]):  # -> Settings
    settings = load_settings(storage=str(root), environ={})
    entries = tuple(AllowlistEntry(n, "bench", "bench", dt.date(2026, 1, 1), cid) for n, cid in names)
    return dataclasses.replace(settings, allowlist=entries, telegram=dataclasses.replace(
        settings.telegram, requests_per_minute=1e9, downloads_per_minute=1e9))


def collector_own_rate(workdir: Path, messages: int, media_every: int) -> dict:
    """bench_collect's harness: time inside the fake client is subtracted, so this is the pipeline's own cost."""
    world = build_world(messages, media_every)
    root = workdir / "collect-own"
    shutil.rmtree(root, ignore_errors=True)
    settings = bench_settings(root, [("bench_channel", 1888777001)])
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    client = TimedClient(world)
    t0 = time.perf_counter()
    result = collect(settings, client, now=start + dt.timedelta(seconds=30 * messages + 3600), since=start)
    total = time.perf_counter() - t0
    counts = result.channels[0].counts
    assert result.channels[0].status == "ok" and counts["messages_new"] == messages, result.channels[0]
    own = total - client.inside_s
    return {"messages": messages, "media": counts["media_hashed"], "total_s": total, "own_s": own,
            "own_rate": messages / own, "total_rate": messages / total}


@dataclass
class ChannelCost:
    posts_per_day: int
    interval_h: int
    channels: int
    requests: Counter  # request kinds, per steady-state run, summed over channels
    downloads: int

    def per_channel(self) -> tuple[float, float]:
        return sum(self.requests.values()) / self.channels, self.downloads / self.channels


def steady_state_cost(workdir: Path, posts_per_day: int, interval_h: int, channels: int = 4,
                      photo_share: float = 0.3) -> ChannelCost:
    """Requests and downloads per channel in a run once a channel is caught up: backfill a week, then
    `interval_h` more hours of posts, and count what the second run asks Telegram for (default settings)."""
    interval = interval_h * HOUR
    rng = np.random.default_rng(posts_per_day)
    world, names = FakeWorld(), []
    sizes = jpeg_sizes(1)
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    history_days = TelegramSettings().rescan_days + 1
    next_id: dict[int, int] = {}

    def post(cid: int, until: dt.datetime, since: dt.datetime) -> None:
        count = round(posts_per_day * (until - since) / dt.timedelta(days=1))
        offsets = np.sort(rng.random(count)) * (until - since).total_seconds()
        batch = []
        for offset in offsets:
            next_id[cid] += 1
            media = photo_media(cid * 10_000_000 + next_id[cid], sizes) if rng.random() < photo_share else None
            batch.append(make_message(cid, next_id[cid], since + dt.timedelta(seconds=float(offset)),
                                      f"post {next_id[cid]}", views=10, media=media))
        world.add_messages(batch)

    for i in range(channels):
        cid, name = 1_950_000_000 + i, f"steady_{posts_per_day}_{i}"
        world.add_channel(make_channel(cid, name, name, participants_count=100))
        names.append((name, cid))
        next_id[cid] = 0
        post(cid, now, now - dt.timedelta(days=history_days))
    root = workdir / f"collect-steady-{posts_per_day}-{interval_h}h"
    shutil.rmtree(root, ignore_errors=True)
    settings = bench_settings(root, names)
    first = collect(settings, FakeTelegramClient(world), now=now)
    assert all(c.status == "ok" for c in first.channels), [(c.username, c.reason) for c in first.channels]
    for _, cid in names:
        post(cid, now + interval, now)
    client = FakeTelegramClient(world)
    second = collect(settings, client, now=now + interval)
    assert all(c.status == "ok" for c in second.channels), [(c.username, c.reason) for c in second.channels]
    kinds = Counter(r.__name__ for r in client.requests)
    downloads = kinds.pop("GetFileRequest", 0)
    return ChannelCost(posts_per_day, interval_h, channels, kinds, downloads)


def bench_collect(args: argparse.Namespace, workdir: Path) -> list[str]:
    print("\ncollect", flush=True)
    tg = TelegramSettings()
    plain = collector_own_rate(workdir, args.collect_messages, 0)
    media = collector_own_rate(workdir, args.collect_messages // 4, 4)
    costs = [steady_state_cost(workdir, p, h) for p in (24, 96, 480) for h in (1, 4)]
    req_hour, dl_hour = tg.requests_per_minute * 60, tg.downloads_per_minute * 60
    backfill_rate = tg.requests_per_minute * tg.page_size / 60
    photo_posts = min(backfill_rate, tg.downloads_per_minute / 60 * 4)  # a photo every 4th post
    lines = [
        "### Messages per second per collector",
        "",
        "| what | measured | messages/s |",
        "|---|---|---:|",
        f"| collector's own cost, text posts (CPU: normalise, Parquet, checkpoint) | {plain['messages']:,} posts in "
        f"{plain['own_s']:.1f} s | {plain['own_rate']:,.0f} |",
        f"| collector's own cost, a photo every 4th post (download, hash in memory) | {media['messages']:,} posts, "
        f"{media['media']:,} photos in {media['own_s']:.1f} s | {media['own_rate']:,.0f} |",
        f"| the fake Telegram plus the collector, whole run (baseline: no network) | {plain['messages']:,} posts in "
        f"{plain['total_s']:.1f} s | {plain['total_rate']:,.0f} |",
        f"| one account's budget, backfill of text posts: {tg.requests_per_minute:g} requests/min x "
        f"{tg.page_size} messages per history page | computed | {backfill_rate:,.0f} |",
        f"| one account's budget, posts with a photo: {tg.downloads_per_minute:g} downloads/min | computed | "
        f"{tg.downloads_per_minute / 60:.2f} photo posts/s |",
        "",
        f"So Telegram's pacing, not the CPU, bounds a collector. An account may read {backfill_rate:,.0f} text "
        f"posts/s, or {photo_posts:.2f} posts/s when every 4th carries a photo (its {tg.downloads_per_minute:g} "
        f"downloads/min); one core's own cost keeps up with about {plain['own_rate'] / backfill_rate:,.0f} "
        f"accounts backfilling text, or {media['own_rate'] / photo_posts:,.0f} accounts reading photo posts.",
        "",
        "### Channels per account",
        "",
        f"What one channel costs per run once it is caught up (after a week's backfill, one more hour, or four, "
        f"of posts, 30% with a photo), counted by the fake client. Every run re-reads the last {tg.rescan_days} "
        "days (`rescan_days`) for counters, edits and deletions, which dominates for busy channels. Budgets per "
        f"account: {tg.requests_per_minute:g} requests/min ({req_hour:,.0f}/h) and {tg.downloads_per_minute:g} "
        f"downloads/min ({dl_hour:,.0f}/h).",
        "",
        "| posts/day per channel | run every | requests per channel-run (by kind) | downloads per channel-run | "
        "channels per account | bound by |",
        "|---:|---:|---|---:|---:|---|",
    ]
    for cost in costs:
        req, dl = cost.per_channel()
        kinds = ", ".join(f"{k} {v / cost.channels:g}" for k, v in sorted(cost.requests.items()))
        by_requests = cost.interval_h * req_hour / req
        by_downloads = cost.interval_h * dl_hour / dl if dl else float("inf")
        channels = min(by_requests, by_downloads)
        bound = "requests" if by_requests <= by_downloads else "downloads"
        lines.append(f"| {cost.posts_per_day} | {cost.interval_h} h | {req:g} ({kinds}) | {dl:g} | "
                     f"{channels:,.0f} | {bound} |")
    return lines


# --- hash ---------------------------------------------------------------------------------------------

def bench_hash(args: argparse.Namespace, workdir: Path) -> list[str]:
    print("\nhash", flush=True)
    files = [str(p) for p in ensure_photos(workdir / "photos", args.photos, 1)]
    naive, _, _ = measure("hash-naive", [sys.executable, str(BENCH_DIR / "naive_hash.py"), *files], workdir)
    ours, out, _ = measure("hash-chanwatch-1", [str(args.chanwatch), "hash", "--workers", "1", *files], workdir)
    both, _, _ = measure("hash-chanwatch-2", [str(args.chanwatch), "hash", "--workers", "2", *files], workdir)
    hashed = sum(1 for line in out.splitlines() if line.startswith("{") and not json.loads(line).get("error"))
    assert hashed == len(files), hashed
    n = len(files)
    return [
        "| hasher (whole process, start-up included) | photos | wall s | photos/s | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
        f"| naive reference, one core (baseline) | {n} | {naive.wall_s:.1f} | {n / naive.wall_s:.1f} | "
        f"{naive.peak_mb:.0f} |",
        f"| `chanwatch hash --workers 1` | {n} | {ours.wall_s:.1f} | {n / ours.wall_s:.1f} | {ours.peak_mb:.0f} |",
        f"| `chanwatch hash --workers 2` | {n} | {both.wall_s:.1f} | {n / both.wall_s:.1f} | {both.peak_mb:.0f} |",
        "",
        f"Per core: {n / ours.wall_s:.0f} photos/s ({n / ours.wall_s * 3600:,.0f}/h), "
        f"{naive.wall_s / ours.wall_s:.1f}x the naive reference. Photos are 1280x960 JPEGs (Telegram's largest "
        "photo size is 1280 px). Videos are sampled at one frame per second: see docs/benchmarks.md for frames/s.",
    ]


# --- match --------------------------------------------------------------------------------------------

def chunk_name(i: int) -> str:
    return f"bank{i:02d}"


def build_chunks(args: argparse.Namespace, root: Path, workdir: Path) -> list[Launched]:
    """Ten 10M-entry lists (seeded per chunk), each imported as its own process; skips chunks already there."""
    imports = []
    banks = HashBanks(Store(str(root)))
    have = {r["list_name"] for r in banks.registry().to_pylist()} if (root / "hashlists").exists() else set()
    for i in range(args.chunks):
        if chunk_name(i) in have:
            print(f"  {chunk_name(i)}: already imported", flush=True)
            continue
        codes = random_codes(np.random.default_rng([args.seed, i]), args.chunk_size)
        list_file = workdir / f"{chunk_name(i)}.txt"
        write_hex_file(codes, list_file)
        del codes
        done, _, _ = measure(f"import-{chunk_name(i)}", [str(args.chanwatch), "--storage", str(root), "hashlist",
                                                         "import", str(list_file), "--name", chunk_name(i),
                                                         "--category", "bench", "--signal", "pdq"], workdir)
        list_file.unlink()
        imports.append(done)
    return imports


def bench_match(args: argparse.Namespace, workdir: Path) -> list[str]:
    print(f"\nmatch: {args.chunks} x {args.chunk_size:,} entries", flush=True)
    root = workdir / "bank-100m"
    imports = build_chunks(args, root, workdir)
    total = args.chunks * args.chunk_size
    banks = HashBanks(Store(str(root)))
    before = rss_mb()
    t0 = time.perf_counter()
    loaded = [banks.load(chunk_name(i), 1) for i in range(args.chunks)]
    load_ms = 1000 * (time.perf_counter() - t0)
    indexes = [b.indexes["pdq"] for b in loaded]
    # 1,000 queries: half near-duplicates (k bits flipped, k in 1..31) of entries spread over every chunk.
    rng = np.random.default_rng([args.seed, 99])
    planted = args.queries // 2
    where = rng.integers(0, args.chunks, planted)
    rows = rng.integers(0, args.chunk_size, planted)
    sources = np.stack([np.asarray(indexes[c].codes[r]) for c, r in zip(where, rows, strict=True)])
    ks = rng.integers(1, PDQ_THRESHOLD + 1, planted)
    queries = np.concatenate([flip_bits(rng, sources, ks), random_codes(rng, args.queries - planted)])
    single_runs = []
    for _ in range(2):
        started = time.perf_counter()
        search(indexes[0], queries, PDQ_THRESHOLD)
        single_runs.append(time.perf_counter() - started)
    single_s = min(single_runs)
    all_runs = []
    found = 0
    for _ in range(2):
        started = time.perf_counter()
        results = [search(index, queries, PDQ_THRESHOLD) for index in indexes]
        all_runs.append(time.perf_counter() - started)
    for q in range(planted):
        qi, codes_i, dist = results[where[q]]
        hit = (qi == q) & (dist == ks[q])
        found += bool(hit.any()) and any(int(codes_i[j]) == rows[q] for j in np.flatnonzero(hit))
    all_s = min(all_runs)
    after = rss_mb()
    file_backed = proc_status_kb("RssFile") / 1000
    # `chanwatch match` over media rows against all ten lists (near-duplicates planted from chunk 0).
    media_root = root
    layout = MediaLayout(MEDIA.schema, {"chanwatch.dataset": MEDIA.name,
                                        "chanwatch.schema_version": str(MEDIA.version)}, PARQUET_OPTIONS, 1_977_000_001)
    shutil.rmtree(media_root / "media", ignore_errors=True)
    shutil.rmtree(media_root / "matches", ignore_errors=True)
    shutil.rmtree(media_root / "_state" / "match", ignore_errors=True)
    plan = write_media(media_root, layout, np.asarray(indexes[0].codes), args.match_rows, args.seed, 0.01,
                       PDQ_THRESHOLD)
    del loaded, indexes, results
    runs = []
    for workers in args.match_workers:  # each from the same start: no matches, no ledger
        shutil.rmtree(media_root / "matches", ignore_errors=True)
        shutil.rmtree(media_root / "_state" / "match", ignore_errors=True)
        config = workdir / f"match-workers-{workers}.toml"
        config.write_text(f"[matching]\nworkers = {workers}\n")
        done, _, _ = measure(f"match-100m-workers-{workers}", [str(args.chanwatch), "--config", str(config),
                                                               "--storage", str(root), "match"], workdir)
        runs.append((workers, done, run_report(root, "match").get("counts", {})))
    rate_all = args.queries / all_s
    lines = [
        f"Bank: {args.chunks} lists of {args.chunk_size:,} random 256-bit codes = {total:,} entries; on disk "
        f"{dir_bytes(root / '_index' / 'hashlists') / 1e6:,.0f} MB of indexes and "
        f"{dir_bytes(root / 'hashlists') / 1e6:,.0f} MB of entries. Imports (wall, peak RSS): "
        + (", ".join(f"{d.wall_s:.0f} s/{d.peak_mb / 1000:.1f} GB" for d in imports) or "already built")
        + ".",
        "",
        "| what | queries | seconds | lookups/s | note |",
        "|---|---:|---:|---:|---|",
        f"| one {args.chunk_size:,}-entry chunk alone (baseline, same process) | {args.queries:,} | {single_s:.2f} | "
        f"{args.queries / single_s:,.0f} | batched, best of 2 |",
        f"| all {args.chunks} chunks ({total:,} entries) | {args.queries:,} | {all_s:.2f} | {rate_all:,.0f} | "
        f"batched, best of 2; {all_s / single_s:.1f}x one chunk |",
        "",
        f"Planted near-duplicates found at exactly their distance: {found}/{planted}. Memory of the lookup "
        f"process: {before:,.0f} MB before loading, {after:,.0f} MB after the lookups, of which "
        f"{file_backed:,.0f} MB file-backed (the memory-mapped indexes: page cache, shared, reclaimable); "
        f"loading the {args.chunks} lists took {load_ms:.0f} ms.",
        "",
        f"`chanwatch match`, {args.match_rows:,} media rows against all {total:,} entries ({plan.planted:,} "
        "planted near-duplicates of entries in the first list), each run from no matches and no ledger; "
        "`[matching] workers` searches that many lists at a time in worker processes:",
        "",
        "| `[matching] workers` | wall s | rows/s | x one worker | peak RSS MB (process tree) | matches found |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    base = runs[0][1].wall_s
    lines += [f"| {w} | {d.wall_s:.1f} | {args.match_rows / d.wall_s:,.0f} | {base / d.wall_s:.2f}x | "
              f"{d.peak_mb:,.0f} | {c.get('matches_found', 0):,} |" for w, d, c in runs]
    return lines


# --- aggregate ----------------------------------------------------------------------------------------

def bench_aggregate(args: argparse.Namespace, workdir: Path) -> list[str]:
    """Full builds at two sizes with the same messages per channel (a deployment grows by adding channels):
    the build's cost follows both the rows and the files, and files follow channels x months."""
    print("\naggregate", flush=True)
    points = []
    for messages in args.aggregate_sizes:
        channels = max(1, messages // args.messages_per_channel)
        root = workdir / f"aggregate-{messages}"
        shutil.rmtree(root, ignore_errors=True)
        t0 = time.perf_counter()
        counts = generate(root, Plan(messages, channels, 364, 1))
        print(f"  generated {messages:,} messages over {channels} channels in {time.perf_counter() - t0:.0f} s",
              flush=True)
        done, _, _ = measure(f"aggregate-{messages}", [sys.executable, "-m", "chanwatch.steps.aggregate",
                                                       "--storage", str(root)], workdir)
        points.append((messages, channels, counts, done, dir_bytes(root) / 1e6))
        shutil.rmtree(root)
    (m1, _, _, d1, _), (m2, _, _, d2, _) = points[0], points[-1]
    slope = (d2.wall_s - d1.wall_s) / (m2 - m1)
    fixed = d1.wall_s - slope * m1
    target = 100_000_000
    at_target = fixed + slope * target
    lines = ["| messages | channels | media rows | Parquet files | Parquet MB | full build wall s | peak RSS MB |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {m:,} | {ch:,} | {c['media']:,} | {c['files']:,} | {mb:,.0f} | {d.wall_s:.1f} | {d.peak_mb:,.0f} |"
              for m, ch, c, d, mb in points]
    lines += ["", f"Both sizes have {args.messages_per_channel:,} messages per channel over 364 days. A straight line "
              f"through the two points: {slope * 1e6:.2f} s per million messages plus {fixed:.1f} s, so about "
              f"**{at_target:,.0f} s ({at_target / 60:.1f} min) for a full build over {target:,} messages** "
              f"({target // args.messages_per_channel:,} channels), one process with DuckDB capped at memory_limit "
              "1GB and 2 threads. The daily incremental run re-reads only the files that changed, so its cost "
              "follows the new day's files, not the total (docs/benchmarks.md: 2.9 s after one new day on 200 "
              "channels)."]
    return lines


# --- report -------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="collect,hash,match,aggregate")
    parser.add_argument("--workdir", type=Path, default=REPO / "var" / "bench" / "scaling")
    parser.add_argument("--chanwatch", type=Path, default=DEFAULT_CHANWATCH)
    parser.add_argument("--collect-messages", type=int, default=20_000)
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--chunk-size", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--match-rows", type=int, default=50_000)
    parser.add_argument("--match-workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--aggregate-sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[2_000_000, 10_000_000])
    parser.add_argument("--messages-per-channel", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    parts = args.parts.split(",")
    sections = {"collect": ("## Collection", bench_collect), "hash": ("## Media hashed per core", bench_hash),
                "match": (f"## Matching against a {TARGET_BANK:,}-entry bank", bench_match),
                "aggregate": ("## Aggregates per 100M messages", bench_aggregate)}
    started = time.perf_counter()
    for part in parts:
        title, fn = sections[part]
        body = fn(args, args.workdir)
        stamp = (f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {cpu_model()} (2 cores, 24 GiB). "
                 f"Command: `python bench/bench_scaling.py --parts {part}`.")
        text = "\n".join([title, "", stamp, "", *body]) + "\n"
        print("\n" + text, flush=True)
        if args.markdown:
            replace_section(args.markdown, title, text)
    print(f"whole run {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
