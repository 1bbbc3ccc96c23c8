"""Research aggregates at scale: full build, incremental day, no-change re-run, and researchers' queries.

A storage root is generated with bench/gen_aggregate.py (default: 10 million messages over 200 channels
and 364 days, with proportional media, matches and forwards). Then, each in its own process, timed and
with its peak RSS (bench/common.launch_measured):

1. `python -m chanwatch.steps.aggregate --storage ROOT`: the full build (no state yet);
2. the same again: nothing changed;
3. the baseline, in the same run: a naive pandas full recompute of `channel_daily` (bench/baseline_aggregate.py),
   whose result must equal chanwatch's row for row;
4. one more day of posts is appended to every channel (the collector's rewrite of each channel's last
   files, not timed as part of the step), then the incremental run, then a no-change re-run;
5. `--full` on the up-to-date root (recomputes everything, rewrites nothing);
6. research queries in DuckDB (a fresh `duckdb` connection per process, default settings): messages per
   day, top forward sources, matches joined to messages; the first two both from the raw messages and from
   the aggregates, with a check that both give the same answer.

    python bench/bench_aggregate.py [--messages 10000000] [--channels 200] [--days 364] [--seed 1]
                                    [--workdir DIR] [--keep] [--markdown docs/benchmarks.md]

Targets: the incremental run takes seconds (under 30 s), the full build stays under 2 GB peak RSS.
Exit status 0 when every run succeeded and every check and target passed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH_DIR))

from common import Launched, cpu_model, dir_bytes, measure_logged, replace_section  # noqa: E402
from gen_aggregate import Plan, add_day, generate  # noqa: E402

SECTION_TITLE = "## Research aggregates"
INCREMENTAL_TARGET_S = 30.0
FULL_RSS_TARGET_MB = 2000.0

QUERY_RUNNER = """
import hashlib, sys, time
import duckdb
root, sql = sys.argv[1], sys.argv[2].replace("ROOT", sys.argv[1])
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
started = time.perf_counter()
rows = con.sql(sql).fetchall()
elapsed = time.perf_counter() - started
print(len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()[:16], f"{elapsed:.3f}")
"""

MESSAGES = "read_parquet('ROOT/messages/**/*.parquet', hive_partitioning = true)"
QUERIES = [
    ("messages per day, from raw `messages`", "per_day",
     f"SELECT CAST(date AS DATE) AS day, count(*)::BIGINT AS n FROM {MESSAGES} "
     "WHERE message_type <> 'service' GROUP BY 1 ORDER BY 1"),
    ("messages per day, from `aggregates/channel_daily`", "per_day",
     "SELECT day, sum(messages)::BIGINT AS n FROM read_parquet('ROOT/aggregates/channel_daily/**/*.parquet', "
     "hive_partitioning = true) GROUP BY 1 ORDER BY 1"),
    ("top 20 forward sources, from raw `messages`", "top_sources",
     "SELECT CASE WHEN fwd_from_channel_id IS NOT NULL THEN 'id:' || fwd_from_channel_id "
     "ELSE 'name:' || fwd_from_name END AS source, count(*)::BIGINT AS n FROM " + MESSAGES + " "
     "WHERE (fwd_from_channel_id IS NOT NULL OR fwd_from_name IS NOT NULL) AND message_type <> 'service' "
     "GROUP BY 1 ORDER BY n DESC, source LIMIT 20"),
    ("top 20 forward sources, from `aggregates/forward_edges`", "top_sources",
     "SELECT source_key AS source, sum(forwards)::BIGINT AS n FROM "
     "read_parquet('ROOT/aggregates/forward_edges/edges.parquet') GROUP BY 1 ORDER BY n DESC, source LIMIT 20"),
    ("matches joined to messages (per list and category: matches, channels, views)", None,
     "SELECT mt.list_name, mt.category, count(*) AS matches, count(DISTINCT mt.channel_id) AS channels, "
     "sum(m.views) AS views FROM read_parquet('ROOT/matches/**/*.parquet', hive_partitioning = true) mt "
     f"JOIN {MESSAGES} m USING (channel_id, message_id) GROUP BY ALL ORDER BY ALL"),
    ("matches per day and list, from `aggregates/matches_daily`", None,
     "SELECT day, list_name, sum(matches) FROM read_parquet('ROOT/aggregates/matches_daily/**/*.parquet', "
     "hive_partitioning = true) GROUP BY ALL ORDER BY ALL"),
]


def aggregate(name: str, root: Path, workdir: Path, *extra: str) -> tuple[Launched, dict]:
    done, out, err = measure_logged(name, [sys.executable, "-m", "chanwatch.steps.aggregate", "--storage", str(root),
                                    *extra], workdir)
    if not done.ok:
        print(err[-3000:], file=sys.stderr)
        return done, {}
    return done, json.loads(out.strip().splitlines()[-1])["counts"]


def compare_baseline(root: Path, baseline: Path) -> tuple[bool, int]:
    """chanwatch's channel_daily equals the naive pandas result on every row and column."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    columns = ("channel_id, day, messages, messages_deleted, forwarded_messages, views, forwards, replies, "
               "reactions, media, media_hashed, matches, matched_media")
    ours = f"SELECT {columns} FROM read_parquet('{root}/aggregates/channel_daily/**/*.parquet')"
    theirs = f"SELECT {columns} FROM read_parquet('{baseline}')"
    differ = con.execute(f"SELECT count(*) FROM (({ours}) EXCEPT ALL ({theirs})) UNION ALL "
                         f"SELECT count(*) FROM (({theirs}) EXCEPT ALL ({ours}))").fetchall()
    rows = con.execute(f"SELECT count(*) FROM ({ours})").fetchall()[0][0]
    return differ[0][0] == 0 and differ[1][0] == 0, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--days", type=int, default=364)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="default: a new temporary directory (removed unless --keep)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-aggregate-"))
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "data"
    plan = Plan(args.messages, args.channels, args.days, args.seed)
    failures: list[str] = []
    try:
        print(f"generating {args.messages:,} messages over {args.channels} channels and {args.days} days in {root}",
              flush=True)
        started = time.perf_counter()
        generated = generate(root, plan, progress=lambda i, n: print(f"  channel {i}/{n}", flush=True)
                             if i % 20 == 0 else None)
        gen_s = time.perf_counter() - started
        inputs_mb = dir_bytes(root) / 1e6
        print(f"  generated in {gen_s:.0f} s: {generated}, {inputs_mb:,.0f} MB", flush=True)

        runs: list[tuple[str, Launched, dict]] = []
        full, counts = aggregate("full", root, workdir)
        runs.append(("full build (no state yet)", full, counts))
        out_mb = (dir_bytes(root / "aggregates") / 1e6, dir_bytes(root / "_state" / "aggregates") / 1e6)
        again, counts = aggregate("rerun", root, workdir)
        runs.append(("re-run, nothing changed", again, counts))
        if counts.get("days_recomputed") != 0 or counts.get("months_written") != 0:
            failures.append(f"no-change re-run recomputed or wrote something: {counts}")

        naive, _, err = measure_logged("naive", [sys.executable, str(BENCH_DIR / "baseline_aggregate.py"), str(root),
                                          str(workdir / "naive.parquet")], workdir)
        if not naive.ok:
            failures.append(f"naive baseline failed: {err[-500:]}")
            same, cd_rows = False, 0
        else:
            same, cd_rows = compare_baseline(root, workdir / "naive.parquet")
            if not same:
                failures.append("channel_daily differs from the naive pandas result")

        started = time.perf_counter()
        added = add_day(root, plan)
        add_s = time.perf_counter() - started
        print(f"  added one day in {add_s:.1f} s: {added}", flush=True)
        inc, inc_counts = aggregate("incremental", root, workdir)
        runs.append(("incremental: one new day on every channel", inc, inc_counts))
        if inc_counts.get("channel_days_recomputed") != args.channels:
            failures.append(f"incremental recomputed {inc_counts.get('channel_days_recomputed')} channel-days, "
                            f"expected {args.channels}")
        after, counts = aggregate("rerun2", root, workdir)
        runs.append(("re-run after the incremental, nothing changed", after, counts))
        if counts.get("days_recomputed") != 0 or counts.get("months_written") != 0:
            failures.append(f"second no-change re-run recomputed or wrote something: {counts}")
        forced, counts = aggregate("full_again", root, workdir, "--full")
        runs.append(("`--full` on the up-to-date root", forced, counts))
        if counts.get("months_written") != 0 or counts.get("edges_written") != 0:
            failures.append(f"--full on an up-to-date root rewrote files: {counts}")
        for name, launched, _ in runs:
            if not launched.ok:
                failures.append(f"{name}: exit {launched.returncode}")

        queries = []
        answers: dict[str, set[str]] = {}
        for i, (title, group, sql) in enumerate(QUERIES):
            done, out, err = measure_logged(f"query{i}", [sys.executable, "-c", QUERY_RUNNER, str(root), sql], workdir)
            if not done.ok:
                failures.append(f"query {title!r} failed: {err[-300:]}")
                continue
            rows, digest, inner_s = out.strip().splitlines()[-1].split()
            queries.append((title, done, int(rows), float(inner_s)))
            if group:
                answers.setdefault(group, set()).add(digest)
        for group, digests in answers.items():
            if len(digests) != 1:
                failures.append(f"raw and aggregate answers differ for {group}")

        if inc.wall_s > INCREMENTAL_TARGET_S:
            failures.append(f"incremental took {inc.wall_s:.1f} s (target < {INCREMENTAL_TARGET_S:.0f} s)")
        if full.peak_mb > FULL_RSS_TARGET_MB:
            failures.append(f"full build peaked at {full.peak_mb:.0f} MB (target < {FULL_RSS_TARGET_MB:.0f} MB)")

        command = "python bench/bench_aggregate.py" + "".join(
            f" --{k} {v}" for k, v in (("messages", args.messages), ("channels", args.channels), ("days", args.days),
                                       ("seed", args.seed)) if v != parser.get_default(k))
        command += f" --markdown {args.markdown}" if args.markdown else ""
        cores = os.cpu_count()
        ram_gb = psutil.virtual_memory().total / 2**30
        lines = [
            f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {cpu_model()} ({cores} cores, {ram_gb:.0f} GB "
            f"RAM; 1-minute load average {os.getloadavg()[0]:.1f} when it ended).", "",
            f"Command: `{command}`", "",
            f"Data (bench/gen_aggregate.py, seed {args.seed}): {generated['messages']:,} messages over "
            f"{args.channels} channels and {args.days} days (2026), {generated['media']:,} media rows, "
            f"{generated['matches']:,} matches, {generated['files']:,} Parquet files, {inputs_mb:,.0f} MB; "
            f"generated in {gen_s:.0f} s. Then one more day: {added['messages']:,} messages, {added['media']:,} "
            f"media and {added['matches']} matches appended to every channel's last files ({add_s:.1f} s, not "
            "part of the step).", "",
            "Each step is its own process (`python -m chanwatch.steps.aggregate --storage ROOT`, the function "
            "behind `chanwatch aggregate`); DuckDB inside it is capped at memory_limit 1GB and 2 threads.", "",
            "| run | wall s | peak RSS MB | files read | channel-days recomputed | files written |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, launched, c in runs:
            written = c.get("months_written", 0) + c.get("months_removed", 0) + c.get("edges_written", 0) \
                + c.get("edge_partials_written", 0) + c.get("state_written", 0)
            lines.append(f"| {name} | {launched.wall_s:.1f} | {launched.peak_mb:.0f} | "
                         f"{c.get('files_digested', '-')} | {c.get('channel_days_recomputed', '-')} | {written} |")
        lines.append(f"| baseline: naive pandas full recompute of `channel_daily` (bench/baseline_aggregate.py) | "
                     f"{naive.wall_s:.1f} | {naive.peak_mb:.0f} | all | all | 1 |")
        lines += [
            "",
            f"Full build: {full_counts_text(runs[0][2])}; outputs {out_mb[0]:.1f} MB, state {out_mb[1]:.1f} MB. "
            f"The baseline's {cd_rows:,} channel-days are " + ("identical to" if same else "NOT identical to")
            + " chanwatch's `channel_daily`, row for row. Incremental: "
            + (f"{inc.wall_s:.1f} s, {inc_counts.get('files_digested')} changed input files re-read, "
               f"{inc_counts.get('months_written')} month files and {inc_counts.get('edges_written')} edges file "
               f"rewritten ({full.wall_s / inc.wall_s:.0f}x faster than the full build, "
               f"{naive.wall_s / inc.wall_s:.0f}x faster than the naive recompute)."
               if inc.ok and naive.ok else "failed."),
            "", "Research queries, DuckDB, one process each (time inside DuckDB; wall includes the interpreter):", "",
            "| query | rows | DuckDB s | wall s | peak RSS MB |", "|---|---:|---:|---:|---:|",
        ]
        lines += [f"| {title} | {rows:,} | {inner:.2f} | {done.wall_s:.2f} | {done.peak_mb:.0f} |"
                  for title, done, rows, inner in queries]
        lines += ["", "Raw and aggregate answers agree (messages per day; top forward sources): "
                  + ("yes." if all(len(d) == 1 for d in answers.values()) else "NO."), "",
                  f"Targets: incremental under {INCREMENTAL_TARGET_S:.0f} s: "
                  + ("PASS" if inc.ok and inc.wall_s <= INCREMENTAL_TARGET_S else "FAIL")
                  + f" ({inc.wall_s:.1f} s); full build under {FULL_RSS_TARGET_MB:.0f} MB peak RSS: "
                  + ("PASS" if full.ok and full.peak_mb <= FULL_RSS_TARGET_MB else "FAIL")
                  + f" ({full.peak_mb:.0f} MB)."]
        if failures:
            lines += ["", "Failures: " + "; ".join(failures)]
        print("\n".join(lines))
        if args.markdown:
            replace_section(args.markdown, SECTION_TITLE, SECTION_TITLE + "\n\n" + "\n".join(lines) + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


def full_counts_text(c: dict) -> str:
    return (f"{c.get('input_files', 0):,} input files digested, {c.get('channel_days_recomputed', 0):,} channel-days "
            f"over {c.get('days_recomputed', 0)} days, {c.get('months_written', 0)} month files, "
            f"{c.get('edges', 0):,} forward edges")


if __name__ == "__main__":
    sys.exit(main())
