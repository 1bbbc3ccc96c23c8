"""Benchmark `chanwatch import-export` against the naive pandas import a user would write.

Both sides run as whole separate processes on the same generated export, in the same run, so the
comparison holds on whatever machine runs it. Peak memory is the larger of the child's ru_maxrss
(from wait4) and the RSS of the whole process tree sampled every 50 ms, so neither a short spike nor
worker subprocesses go unseen.

    python bench/bench_import.py [--messages 1000000] [--workdir var/bench] [--keep]
                                 [--only baseline|chanwatch] [--markdown docs/benchmarks.md]

Relative paths are taken from the current directory. Exit status: 0 when every run succeeded and every
target passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import TreeSampler, cpu_model, replace_section

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
GENERATOR = BENCH_DIR / "gen_export.py"
BASELINE = BENCH_DIR / "baseline_import.py"
DEFAULT_CHANWATCH = REPO / ".venv" / "bin" / "chanwatch"
SECTION_TITLE = "## Import of a 1M-message export"
SAMPLE_SECONDS = 0.05
MB = 1_000_000  # decimal megabytes throughout, for file sizes and RSS alike
RSS_LIMIT_MB = 500
MAX_PARQUET_FILES = 100
RSS_FACTOR = 4

CONFIG_TEMPLATE = """\
[storage]
root = {root}
[[channels]]
username = "bench_channel"
channel_id = 1888000001
basis = "benchmark fixture"
approved_by = "bench"
approved_at = 2026-11-23
"""


@dataclass
class RunResult:
    """One measured process run; `ok` is False when it exited non-zero."""

    name: str
    wall_s: float
    maxrss_bytes: int  # ru_maxrss of the child as reported by wait4
    sampled_bytes: int  # peak of the summed RSS of the child and its descendants
    returncode: int
    stdout: str
    stderr: str
    parquet_files: int = 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def peak_bytes(self) -> int:
        return max(self.maxrss_bytes, self.sampled_bytes)


# --- the export ---------------------------------------------------------------------------------


def _generator_digest() -> str:
    """A cached export is reused only if the generator that wrote it is unchanged."""
    return hashlib.sha256(GENERATOR.read_bytes()).hexdigest()


def ensure_export(workdir: Path, messages: int, seed: int) -> tuple[Path, float | None]:
    """Return the export for (messages, seed), generating it unless a valid cached copy exists.

    The second value is the generation time in seconds, None when the cache was used."""
    export = workdir / f"export-{messages}-seed{seed}.json"
    meta_path = export.with_suffix(".meta.json")
    meta = {"messages": messages, "seed": seed, "generator_sha256": _generator_digest()}
    if export.exists() and meta_path.exists():
        cached = json.loads(meta_path.read_text())
        if cached == {**meta, "bytes": export.stat().st_size}:
            return export, None
    meta_path.unlink(missing_ok=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, str(GENERATOR), str(export), "--messages", str(messages),
                    "--seed", str(seed)], check=True)
    elapsed = time.perf_counter() - started
    meta_path.write_text(json.dumps({**meta, "bytes": export.stat().st_size}, indent=1))
    return export, elapsed


def write_config(workdir: Path, storage: Path) -> Path:
    """The allowlist chanwatch needs to accept the fixture channel."""
    config = workdir / "bench-chanwatch.toml"
    config.write_text(CONFIG_TEMPLATE.format(root=json.dumps(str(storage))), encoding="utf-8")
    return config


# --- measuring ----------------------------------------------------------------------------------


def measure(name: str, cmd: list[str], logdir: Path) -> RunResult:
    """Run `cmd` to completion, timing it and tracking its peak memory; output goes to log files."""
    out_log, err_log = logdir / f"{name}.stdout.log", logdir / f"{name}.stderr.log"
    print(f"[{name}] {shlex.join(cmd)}", flush=True)
    with out_log.open("wb") as out, err_log.open("wb") as err:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        sampler = TreeSampler(child.pid)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        sampler.stop.set()
        sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; tell Popen
    return RunResult(name, wall, usage.ru_maxrss * 1024, sampler.peak, child.returncode,
                     out_log.read_text(errors="replace"), err_log.read_text(errors="replace"))


def _fresh_dir(path: Path) -> Path:
    """Outputs start empty so every run is a first import, not a no-op re-import."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def run_baseline(workdir: Path, export: Path) -> RunResult:
    out_dir = _fresh_dir(workdir / "baseline-out")
    result = measure("baseline", [sys.executable, str(BASELINE), str(export), str(out_dir)], workdir)
    result.parquet_files = sum(1 for _ in out_dir.rglob("*.parquet"))
    return result


def run_chanwatch(workdir: Path, export: Path, chanwatch: Path) -> RunResult:
    storage = _fresh_dir(workdir / "chanwatch-storage")
    config = write_config(workdir, storage)
    cmd = [str(chanwatch), "--storage", str(storage), "--config", str(config), "import-export", str(export)]
    result = measure("chanwatch", cmd, workdir)
    result.parquet_files = sum(1 for _ in storage.rglob("*.parquet"))
    return result


# --- reporting ----------------------------------------------------------------------------------


def _rate(messages: int, result: RunResult) -> float:
    return messages / result.wall_s if result.wall_s > 0 else 0.0


def results_table(messages: int, file_bytes: int, results: list[RunResult]) -> str:
    """A markdown table; it reads fine on a terminal too, so one renderer serves both."""
    lines = ["| importer | messages | file MB | wall s | messages/s | peak RSS MB | Parquet files |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if not r.ok:
            lines.append(f"| {r.name} | {messages:,} | {file_bytes / MB:.1f} | failed (exit {r.returncode}) "
                         "| – | – | – |")
            continue
        lines.append(f"| {r.name} | {messages:,} | {file_bytes / MB:.1f} | {r.wall_s:.1f} | "
                     f"{_rate(messages, r):,.0f} | {r.peak_bytes / MB:.0f} | {r.parquet_files} |")
    return "\n".join(lines)


def imported_count(result: RunResult) -> int | None:
    """Messages chanwatch says it read, from its summary line; None if the line is not there."""
    match = re.search(r"imported (\d+) messages", result.stdout)
    return int(match.group(1)) if match else None


def ratio_lines(messages: int, base: RunResult, cw: RunResult) -> list[str]:
    speed = _rate(messages, cw) / _rate(messages, base)
    rss = cw.peak_bytes / base.peak_bytes
    return [f"- speed, chanwatch / baseline: **{speed:.2f}×**",
            f"- peak RSS, chanwatch / baseline: **{rss:.2f}×**"]


def target_lines(messages: int, base: RunResult | None, cw: RunResult | None) -> list[str]:
    """PASS/FAIL per target; a target needing a run that failed or was skipped cannot pass."""
    def verdict(needs: list[RunResult | None], check: bool | None) -> str:
        if any(r is None for r in needs):
            return "SKIP (not run)"
        if any(not r.ok for r in needs if r is not None):
            return "FAIL (run failed)"
        return "PASS" if check else "FAIL"

    both_ok = base is not None and cw is not None and base.ok and cw.ok
    cw_ok = cw is not None and cw.ok
    count = imported_count(cw) if cw_ok and cw is not None else None
    said = "no summary line found" if count is None else f"{count:,}"
    rows = [
        (f"chanwatch peak RSS < {RSS_LIMIT_MB} MB", [cw], cw_ok and cw.peak_bytes < RSS_LIMIT_MB * MB),
        ("chanwatch messages/s > baseline messages/s", [cw, base],
         both_ok and _rate(messages, cw) > _rate(messages, base)),
        (f"chanwatch peak RSS <= baseline peak RSS / {RSS_FACTOR}", [cw, base],
         both_ok and cw.peak_bytes * RSS_FACTOR <= base.peak_bytes),
        (f"chanwatch Parquet files <= {MAX_PARQUET_FILES}", [cw],
         cw_ok and cw.parquet_files <= MAX_PARQUET_FILES),
        (f"chanwatch read all {messages:,} messages" + (f" (its summary says: {said})" if cw_ok else ""),
         [cw], count == messages),
    ]
    return [f"- {verdict(needs, check)}: {label}" for label, needs, check in rows]  # type: ignore[arg-type]


def failure_report(result: RunResult, tail: int = 25) -> str:
    lines = result.stderr.rstrip().splitlines()[-tail:] or ["(stderr empty)"]
    return "\n".join([f"!! {result.name} exited {result.returncode}; last {len(lines)} lines of stderr:",
                      *(f"   {line}" for line in lines)])


def machine_line() -> str:
    import pandas
    import pyarrow

    return (f"{len(os.sched_getaffinity(0))} CPUs (nproc), {cpu_model()}, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM; Python {platform.python_version()}, "
            f"pandas {pandas.__version__}, pyarrow {pyarrow.__version__}")


def markdown_section(table: str, summary: list[str], command: str) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        SECTION_TITLE, "",
        f"Measured {when} on {machine_line()}.", "",
        f"Command: `{command}`", "",
        "MB are 10^6 bytes. Peak RSS is the larger of the process's own ru_maxrss and the summed RSS of its",
        "process tree sampled every 50 ms. The baseline is `bench/baseline_import.py`: `json.load`, one",
        "`pandas.DataFrame`, nested columns turned into JSON strings, one `to_parquet`.", "",
        table, "", *summary, "",
    ])


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("var/bench"))
    parser.add_argument("--keep", action="store_true", help="keep both importers' output directories")
    parser.add_argument("--only", choices=("baseline", "chanwatch"), help="run one side only")
    parser.add_argument("--markdown", type=Path, help="replace or append the results section in this file")
    parser.add_argument("--chanwatch", type=Path, default=DEFAULT_CHANWATCH, help="the chanwatch executable")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    args = parse_args(raw)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    export, gen_seconds = ensure_export(workdir, args.messages, args.seed)
    file_bytes = export.stat().st_size
    how = "cached" if gen_seconds is None else f"generated in {gen_seconds:.1f} s"
    print(f"export: {export} ({args.messages:,} messages, {file_bytes / MB:.1f} MB, {how})", flush=True)

    base = run_baseline(workdir, export) if args.only != "chanwatch" else None
    cw = run_chanwatch(workdir, export, args.chanwatch) if args.only != "baseline" else None
    results = [r for r in (base, cw) if r is not None]
    if not args.keep:  # only what this run wrote: an earlier --keep of the other side survives
        for result, sub in ((base, "baseline-out"), (cw, "chanwatch-storage")):
            if result is not None:
                shutil.rmtree(workdir / sub, ignore_errors=True)

    print()
    for r in results:
        print(f"{r.name}: wall {r.wall_s:.1f} s, peak RSS {r.peak_bytes / MB:.0f} MB "
              f"(wait4 ru_maxrss {r.maxrss_bytes / MB:.0f} MB, sampled tree {r.sampled_bytes / MB:.0f} MB)")
        if not r.ok:
            print(failure_report(r))
    table = results_table(args.messages, file_bytes, results)
    summary = ratio_lines(args.messages, base, cw) if base and cw and base.ok and cw.ok else []
    summary += target_lines(args.messages, base, cw)
    print("\n" + table + "\n\n" + "\n".join(summary))

    if args.markdown:
        command = shlex.join(["python", "bench/bench_import.py", *raw])
        replace_section(args.markdown, SECTION_TITLE, markdown_section(table, summary, command))
        print(f"\nwrote section {SECTION_TITLE!r} to {args.markdown}")
    failed = any(not r.ok for r in results) or any("FAIL" in line for line in summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
