"""Benchmark hash-list import, lookups and `chanwatch match` on large PDQ banks, against brute force and FAISS flat.

Per bank size (default 1M and 10M random PDQ codes, seeded; bench/gen_hashlists.py):

1. the bank is written as a bare-hex list (one 64-hex code per line) to a temporary directory, and
   `chanwatch hashlist import` runs on it as a whole process: wall time, peak RSS, the run report's
   parse/index/write timings, and the index and entries sizes on disk;
2. right after the import returns, a fresh `chanwatch lookup pdq:<hex>` process looks up a planted
   near-duplicate: import wall + lookup wall is the time from a new version to its entries being live;
3. in this process, the bank is loaded (`HashBanks.load`, memory-mapped) and searched with 1,000
   queries (500 near-duplicates of bank entries with k in 1..31 bits flipped, 500 random), batched
   and one at a time; the same queries go to NumPy brute force (`brute_force`, the reference; a
   subset on large banks, where it takes about 0.4 s a query) and to FAISS's flat index, in the
   same run. Results must equal brute force's and FAISS's exactly, and every planted query must
   find its source entry at distance exactly k.

Then `chanwatch match` runs over generated media rows (one Parquet file per 50,000 message ids,
about 1% near-duplicates of bank entries) against the 1M bank, twice: the second run has nothing
new to search.

    python bench/bench_hashlists.py [--sizes 1000000,10000000] [--queries 1000] [--brute-queries-large 100]
                                    [--match-rows 1000000] [--match-bank 1000000] [--seed 1]
                                    [--markdown docs/benchmarks.md]

Everything is generated under a temporary directory in /tmp, removed at the end. Exit status: 0 when
every run succeeded and every check and target passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import psutil
import pyarrow.parquet as pq

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))  # run as a script from anywhere: processing/ and storage/ are top-level packages
sys.path.insert(0, str(BENCH_DIR))

from common import Launched, cpu_model, dir_bytes, launch_measured, replace_section  # noqa: E402
from gen_hashlists import (  # noqa: E402
    MediaLayout,
    MediaPlan,
    Queries,
    hex_strings,
    make_queries,
    random_codes,
    write_hex_file,
    write_media,
)

from processing.matching.binary_index import FlatIndex, brute_force, search  # noqa: E402
from processing.matching.mih import probe_radius  # noqa: E402
from storage.files import PARQUET_OPTIONS  # noqa: E402
from storage.hashbanks import Bank, HashBanks  # noqa: E402
from storage.schemas import MEDIA  # noqa: E402
from storage.store import Store  # noqa: E402

DEFAULT_CHANWATCH = REPO / ".venv" / "bin" / "chanwatch"
SECTION_TITLE = "## Hash-list matching"
LIST_NAME = "bench"
CATEGORY = "bench"
CHANNEL_ID = 1999000009
PDQ_THRESHOLD = 31  # chanwatch's default: a match is distance <= 31
SPEEDUP_TARGET = 30.0  # ours / NumPy brute force lookups/s, on the largest bank
BRUTE_FULL_MAX = 1_000_000  # banks up to this size get every query brute-forced; larger ones a subset
SINGLE_QUERIES = 200  # lookups timed one call each
BATCH_REPEATS = 3
NEAR_SHARE = 0.01  # media rows that are near-duplicates of bank entries
MB = 1_000_000


# --- measuring processes ------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult(Launched):
    """One measured process run."""

    name: str
    stdout: str
    stderr: str

    def failure(self) -> str:
        tail = self.stderr.strip().splitlines()[-1:] or ["no stderr"]
        return f"{self.name} exited {self.returncode}: {tail[0]}"



def measure(name: str, cmd: list[str], workdir: Path) -> RunResult:
    """Run `cmd` in `workdir` (no chanwatch.toml there) to completion, timing it and its peak memory."""
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    out_log, err_log = logs / f"{name}.stdout.log", logs / f"{name}.stderr.log"
    print(f"  [{name}] {shlex.join(cmd)}", flush=True)
    done = launch_measured(cmd, workdir, out_log, err_log)
    run = RunResult(**vars(done), name=name, stdout=out_log.read_text(errors="replace"),
                    stderr=err_log.read_text(errors="replace"))
    print(f"  [{name}] {run.wall_s:.2f} s, peak {run.peak_mb:.0f} MB" + ("" if run.ok else f", exit {run.returncode}"),
          flush=True)
    return run


def run_report(root: Path, prefix: str) -> dict[str, Any]:
    """The newest run report of a step (`_state/runs/<prefix>-*.json`); run ids sort by time."""
    reports = sorted((root / "_state" / "runs").glob(f"{prefix}-*.json"))
    return json.loads(reports[-1].read_text()) if reports else {}


# --- in-process memory --------------------------------------------------------------------------


def proc_status_kb(field_name: str) -> int:
    found = re.search(rf"^{field_name}:\s+(\d+) kB", Path("/proc/self/status").read_text(), flags=re.M)
    return int(found.group(1)) if found else 0


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5): the bank's peak, not the generator's, is wanted."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Memory:
    """This process's RSS around loading and searching a bank (MB); mapped index pages count once touched."""

    before_load: float = 0.0
    after_load: float = 0.0
    after_lookups: float = 0.0
    after_lookups_file: float = 0.0  # of which file-backed (RssFile): mapped index pages, shared and reclaimable
    peak: float = 0.0  # VmHWM from just before the load to just after the lookups
    peak_reset: bool = False  # False when VmHWM could not be reset: then it includes the generator's peak


def rss_mb() -> float:
    return proc_status_kb("VmRSS") * 1024 / MB


# --- one bank: generate, import, time to live ---------------------------------------------------


@dataclass
class ImportFigures:
    size: int
    list_bytes: int
    run: RunResult
    report: dict[str, Any]
    index_bytes: int
    entries_bytes: int

    @property
    def timings(self) -> dict[str, float]:
        return self.report.get("timings", {})

    @property
    def index_kind(self) -> str:
        return str(self.report.get("index_kinds", {}).get("pdq", "?"))

    @property
    def entries(self) -> int:
        return int(self.report.get("entries", {}).get("pdq", 0))


@dataclass
class LiveFigures:
    """A fresh `chanwatch lookup` right after the import: did the new version's entry come back, and how fast."""

    run: RunResult
    expected_entry: str
    expected_distance: int
    found: bool


def codes_digest(codes: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(codes).tobytes()).hexdigest()


def import_bank(args: argparse.Namespace, workdir: Path, size: int, codes: np.ndarray) -> ImportFigures:
    """Write the bank as a bare-hex list and import it with `chanwatch hashlist import`, as a whole process."""
    root = bank_root(workdir, size)
    list_file = workdir / f"bank-{size}.txt"
    started = time.perf_counter()
    list_bytes = write_hex_file(codes, list_file)
    print(f"  wrote {list_file.name}: {list_bytes / MB:.0f} MB in {time.perf_counter() - started:.1f} s", flush=True)
    run = measure(f"import-{size}", [str(args.chanwatch), "--storage", str(root), "hashlist", "import",
                                     str(list_file), "--name", LIST_NAME, "--category", CATEGORY, "--signal", "pdq"],
                  workdir)
    list_file.unlink()  # 650 MB at 10M entries; not needed once imported
    banks = HashBanks(Store(str(root)))
    return ImportFigures(size, list_bytes, run, run_report(root, "hashlist"),
                         dir_bytes(banks.version_dir(LIST_NAME, 1)),
                         dir_bytes(root / "hashlists" / f"list={LIST_NAME}"))


def time_to_live(args: argparse.Namespace, workdir: Path, size: int, bank: np.ndarray, queries: Queries) -> LiveFigures:
    """Look up the first planted near-duplicate with a fresh process; it must return its source at distance k."""
    query_hex = hex_strings(queries.codes[:1])[0]
    expected = hex_strings(bank[queries.sources[:1]])[0]
    distance = int(queries.ks[0])
    run = measure(f"lookup-{size}", [str(args.chanwatch), "--storage", str(bank_root(workdir, size)), "lookup",
                                     f"pdq:{query_hex}"], workdir)
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    found = any(line.get("entry_id") == expected and line.get("distance") == distance for line in lines)
    return LiveFigures(run, expected, distance, found)


def bank_root(workdir: Path, size: int) -> Path:
    return workdir / f"storage-{size}"


# --- one bank: lookups in this process ----------------------------------------------------------


Triples = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class Timed:
    """One way of searching: how many lookups, how long, and what it returned."""

    name: str
    queries: int
    seconds: float
    result: Triples | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.queries / self.seconds if self.seconds > 0 else 0.0


@dataclass
class LookupFigures:
    size: int
    index_kind: str
    load_ms: float
    codes_match: bool  # the loaded bank holds exactly the generated codes, in order
    memory: Memory
    batched: Timed
    batched_first_s: float
    single: Timed
    single_ms: list[float]
    brute: Timed
    faiss: Timed
    faiss_add_s: float
    brute_subset: np.ndarray
    equal_brute: bool
    equal_faiss: bool
    recall: float
    planted_found: int
    planted: int
    unexpected_hits: int  # hits other than the planted (query, source, k) triples


def sort_triples(t: Triples) -> Triples:
    q, c, d = (np.asarray(a, dtype=np.int64) for a in t)
    order = np.lexsort((c, q))
    return q[order], c[order], d[order]


def same_triples(a: Triples, b: Triples) -> bool:
    """Exactly the same (query, code, distance) triples, whatever order each side returned them in."""
    a, b = sort_triples(a), sort_triples(b)
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def restrict(t: Triples, subset: np.ndarray, count: int) -> Triples:
    """The triples of the queries in `subset`, renumbered by position in `subset` (as brute force saw them)."""
    position = np.full(count, -1, dtype=np.int64)
    position[subset] = np.arange(len(subset))
    q, c, d = (np.asarray(a) for a in t)
    keep = position[q] >= 0
    return position[q[keep]], c[keep], d[keep]


def brute_subset(queries: Queries, wanted: int) -> np.ndarray:
    """Query indexes for brute force on a large bank: half planted, half random, spread evenly."""
    count = len(queries.codes)
    wanted = min(wanted, count)
    planted_part = np.linspace(0, queries.planted - 1, wanted // 2).round().astype(np.int64)
    random_part = np.linspace(queries.planted, count - 1, wanted - wanted // 2).round().astype(np.int64)
    return np.unique(np.concatenate([planted_part, random_part]))


def planted_recall(result: Triples, queries: Queries) -> tuple[int, int]:
    """(planted queries that found their source at distance exactly k, hits that are not such a triple)."""
    expected = {(i, int(s), int(k)) for i, (s, k) in enumerate(zip(queries.sources, queries.ks, strict=True))}
    got = {(int(q), int(c), int(d)) for q, c, d in zip(*result, strict=True)}
    return len(expected & got), len(got - expected)


T = TypeVar("T")


def time_call(fn: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def time_ours(index: Any, queries: np.ndarray) -> tuple[Timed, float, Timed, list[float]]:
    """Batched (one `search` call, best of BATCH_REPEATS; the first call is reported apart) and one query a call."""
    runs = [time_call(lambda: search(index, queries, PDQ_THRESHOLD)) for _ in range(BATCH_REPEATS)]
    best = min(seconds for seconds, _ in runs)
    batched = Timed("ours, batched (one `search` call)", len(queries), best, runs[0][1],
                    f"best of {BATCH_REPEATS}; first call {runs[0][0]:.3f} s")
    picks = np.linspace(0, len(queries) - 1, min(SINGLE_QUERIES, len(queries))).round().astype(np.int64)
    latencies = [time_call(lambda i=i: search(index, queries[i:i + 1], PDQ_THRESHOLD))[0] for i in picks]
    ms = [1000 * s for s in latencies]
    single = Timed("ours, one query per call", len(picks), sum(latencies),
                   note=f"median {statistics.median(ms):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms")
    return batched, runs[0][0], single, ms


def index_detail(index: Any) -> str:
    """The index kind, and for multi-index hashing its chunks and probe radius: they set the cost of a lookup."""
    widths = getattr(index, "widths", None)
    if not widths:
        return str(index.kind)
    sizes = "/".join(str(w) for w in sorted(set(widths), reverse=True))
    return f"{index.kind}, {len(widths)} chunks of {sizes} bits, radius {probe_radius(PDQ_THRESHOLD, len(widths))}"


def load_bank(root: Path) -> tuple[Bank, float]:
    started = time.perf_counter()
    bank = HashBanks(Store(str(root))).load(LIST_NAME, 1)
    return bank, 1000 * (time.perf_counter() - started)


def bench_lookups(args: argparse.Namespace, workdir: Path, size: int, digest: str, queries: Queries) -> LookupFigures:
    """Load the imported bank, time our lookups (memory first, before any baseline allocates), then the baselines."""
    memory = Memory(before_load=rss_mb(), peak_reset=reset_peak_rss())
    bank, load_ms = load_bank(bank_root(workdir, size))
    memory.after_load = rss_mb()
    index = bank.indexes["pdq"]
    batched, first_s, single, single_ms = time_ours(index, queries.codes)
    memory.after_lookups, memory.peak = rss_mb(), proc_status_kb("VmHWM") * 1024 / MB
    memory.after_lookups_file = proc_status_kb("RssFile") * 1024 / MB
    print(f"  [lookups-{size}] ours: {batched.rate:,.0f}/s batched, {single.rate:,.0f}/s one at a time", flush=True)

    codes = np.asarray(index.codes)
    codes_match = codes.shape == (size, 32) and codes_digest(codes) == digest
    everything = np.arange(len(queries.codes))
    subset = everything if size <= BRUTE_FULL_MAX else brute_subset(queries, args.brute_queries_large)
    seconds, brute_result = time_call(lambda: brute_force(codes, queries.codes[subset], PDQ_THRESHOLD))
    brute = Timed("NumPy brute force (`brute_force`)", len(subset), seconds, brute_result)
    print(f"  [lookups-{size}] NumPy brute force: {brute.rate:,.1f}/s on {len(subset)} queries", flush=True)

    add_s, flat = time_call(lambda: FlatIndex(codes))
    seconds, faiss_result = time_call(lambda: flat.search(queries.codes, PDQ_THRESHOLD))
    faiss = Timed("FAISS flat (`FlatIndex.search`)", len(queries.codes), seconds, faiss_result,
                  f"plus {add_s:.2f} s to add the codes")
    print(f"  [lookups-{size}] FAISS flat: {faiss.rate:,.0f}/s", flush=True)

    ours = batched.result
    assert ours is not None
    found, unexpected = planted_recall(ours, queries)
    return LookupFigures(
        size, index_detail(index), load_ms, codes_match, memory, batched, first_s, single, single_ms, brute, faiss,
        add_s, subset, same_triples(restrict(ours, subset, len(queries.codes)), brute_result),
        same_triples(ours, faiss_result), found / queries.planted if queries.planted else 0.0, found,
        queries.planted, unexpected)


@dataclass
class BankFigures:
    size: int
    imported: ImportFigures
    live: LiveFigures | None
    lookups: LookupFigures | None


def bench_bank(args: argparse.Namespace, workdir: Path, size: int) -> BankFigures:
    """Generate, import and look up one bank size; the generated codes are dropped before the bank is loaded."""
    print(f"\nbank of {size:,} codes", flush=True)
    rng = np.random.default_rng([args.seed, size])
    codes = random_codes(rng, size)
    queries = make_queries(rng, codes, args.queries, PDQ_THRESHOLD)
    imported = import_bank(args, workdir, size, codes)
    if not imported.run.ok:
        print(f"  {imported.run.failure()}", flush=True)
        return BankFigures(size, imported, None, None)
    live = time_to_live(args, workdir, size, codes, queries)
    digest = codes_digest(codes)
    del codes  # the bank is checked against this digest; the RSS figures should be the bank's, not the generator's
    return BankFigures(size, imported, live, bench_lookups(args, workdir, size, digest, queries))


# --- chanwatch match ----------------------------------------------------------------------------


@dataclass
class MatchFigures:
    rows: int
    bank_size: int
    plan: MediaPlan
    generate_s: float
    first: RunResult
    second: RunResult
    first_report: dict[str, Any]
    second_report: dict[str, Any]
    matched_planted: int  # planted (message, entry, k) triples found in the matches dataset
    matched_other: int  # match rows that are not a planted triple
    sample_rows: int  # random media rows brute-forced against the bank
    sample_hits: int
    brute_per_lookup_s: float  # NumPy brute force seconds per lookup on this bank (measured above)

    @property
    def found(self) -> int:
        return int(self.first_report.get("counts", {}).get("matches_found", -1))


def expected_random_hits(pairs: float) -> float:
    """Expected random pairs within the threshold: pairs x P(distance <= 31) for two random 256-bit codes."""
    return pairs * sum(math.comb(256, k) for k in range(PDQ_THRESHOLD + 1)) / 2**256


def read_matches(root: Path) -> list[tuple[int, str, int]]:
    files = sorted((root / "matches").rglob("*.parquet"))
    rows: list[tuple[int, str, int]] = []
    for path in files:
        table = pq.read_table(path, columns=["message_id", "entry_hash", "distance"])
        rows.extend(zip(*(table[c].to_pylist() for c in table.column_names), strict=True))
    return rows


def sample_random_rows(plan: MediaPlan, root: Path, bank: np.ndarray, sample: int) -> tuple[int, int]:
    """Brute-force a few of the random (unplanted) media rows against the bank: there should be no hits."""
    planted = set(plan.message_ids.tolist())
    ids = [i for i in range(1, plan.rows + 1, max(1, plan.rows // (sample * 2))) if i not in planted][:sample]
    table = pq.read_table(root / "media", columns=["message_id", "pdq"]).to_pydict()
    by_id = dict(zip(table["message_id"], table["pdq"], strict=True))
    codes = np.frombuffer(bytes.fromhex("".join(by_id[i] for i in ids)), dtype=np.uint8).reshape(len(ids), 32)
    return len(ids), len(brute_force(bank, codes, PDQ_THRESHOLD)[0])


def bench_match(args: argparse.Namespace, workdir: Path, banks: dict[int, BankFigures]) -> MatchFigures | None:
    """`chanwatch match` over generated media rows against the --match-bank bank, then again (nothing new)."""
    size = args.match_bank
    print(f"\nmatch: {args.match_rows:,} media rows against the {size:,}-entry bank", flush=True)
    if size not in banks:  # not benchmarked above: import it, unmeasured
        rng = np.random.default_rng([args.seed, size])
        banks[size] = BankFigures(size, import_bank(args, workdir, size, random_codes(rng, size)), None, None)
    if not banks[size].imported.run.ok:
        return None
    root = bank_root(workdir, size)
    bank = np.array(HashBanks(Store(str(root))).load(LIST_NAME, 1).indexes["pdq"].codes)
    layout = MediaLayout(MEDIA.schema, {"chanwatch.dataset": MEDIA.name, "chanwatch.schema_version":
                                        str(MEDIA.version)}, PARQUET_OPTIONS, CHANNEL_ID)
    started = time.perf_counter()
    plan = write_media(root, layout, bank, args.match_rows, args.seed, NEAR_SHARE, PDQ_THRESHOLD)
    generate_s = time.perf_counter() - started
    print(f"  wrote {plan.files} media files, {plan.planted:,} near-duplicates, in {generate_s:.1f} s", flush=True)
    cmd = [str(args.chanwatch), "--storage", str(root), "match"]
    first = measure("match-1", cmd, workdir)
    first_report = run_report(root, "match")
    second = measure("match-2", cmd, workdir)
    second_report = run_report(root, "match")
    expected = {(int(m), h, int(k)) for m, h, k in zip(plan.message_ids, hex_strings(bank[plan.sources]), plan.ks,
                                                       strict=True)}
    matches = read_matches(root)
    sample_rows, sample_hits = sample_random_rows(plan, root, bank, args.match_sample)
    brute = banks[size].lookups
    per_lookup = brute.brute.seconds / brute.brute.queries if brute else float("nan")
    return MatchFigures(args.match_rows, size, plan, generate_s, first, second, first_report, second_report,
                        len(expected & set(matches)), len(set(matches) - expected), sample_rows, sample_hits,
                        per_lookup)


# --- the code under test ------------------------------------------------------------------------

# What the measured paths run: parsing, indexes, search, the three steps, and the storage they read and write.
# (Not all of chanwatch: other work lands on the same tree meanwhile and should not void a run.)
CODE_PATHS = ("processing/matching", "processing/hashlists", "chanwatch/steps/hashlists.py", "chanwatch/steps/match.py",
              "chanwatch/steps/lookup.py", "storage/hashbanks.py", "storage/match_state.py", "storage/store.py",
              "storage/files.py", "storage/checkpoints.py", "storage/writer.py")


def code_fingerprint() -> str:
    """Digest of the code this bench measures: others edit it, and one run must measure one version."""
    digest = hashlib.sha256()
    for rel in CODE_PATHS:
        path = REPO / rel
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(REPO).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def code_version() -> str:
    """The commit measured, and whether the measured files differ from it (read-only git calls)."""
    def git(*argv: str) -> str:
        try:
            return subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""
    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", *CODE_PATHS)
    return f"commit {commit}" + (" with uncommitted changes to the measured code" if dirty else "")


# --- reporting ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def import_table(banks: list[BankFigures]) -> str:
    rows = ["| bank entries | list file MB | import wall s | parse s | index s | write s | peak RSS MB | index | "
            "index on disk MB | entries Parquet MB |",
            "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for b in banks:
        imp = b.imported
        if not imp.run.ok:
            rows.append(f"| {b.size:,} | {imp.list_bytes / MB:.0f} | failed | – | – | – | {imp.run.peak_mb:.0f} | – | "
                        "– | – |")
            continue
        t = imp.timings
        rows.append(f"| {b.size:,} | {imp.list_bytes / MB:.0f} | {imp.run.wall_s:.1f} | {t.get('parse_s', 0):.1f} | "
                    f"{t.get('index_s', 0):.1f} | {t.get('write_s', 0):.1f} | {imp.run.peak_mb:.0f} | "
                    f"{imp.index_kind} | {imp.index_bytes / MB:.0f} | {imp.entries_bytes / MB:.0f} |")
    return "\n".join(rows)


def rate(per_second: float) -> str:
    """Rates to three significant figures or so: 1.97, 41.2, 2,310."""
    return f"{per_second:,.0f}" if per_second >= 100 else f"{per_second:.3g}"


def lookup_table(banks: list[BankFigures]) -> str:
    rows = ["| bank entries | method | queries | seconds | lookups/s | × NumPy | same results | note |",
            "|---:|---|---:|---:|---:|---:|---|---|"]
    for b in banks:
        lf = b.lookups
        if lf is None:
            continue
        numpy_rate = lf.brute.rate
        checks = {lf.batched.name: f"= NumPy ({len(lf.brute_subset)} q): {'yes' if lf.equal_brute else '**NO**'}; "
                                   f"= FAISS ({lf.faiss.queries} q): {'yes' if lf.equal_faiss else '**NO**'}",
                  lf.brute.name: "the reference", lf.faiss.name: "", lf.single.name: ""}
        for timed in (lf.batched, lf.single, lf.brute, lf.faiss):
            rows.append(f"| {b.size:,} | {timed.name} | {timed.queries:,} | {timed.seconds:.3f} | {rate(timed.rate)} | "
                        f"{timed.rate / numpy_rate:,.1f}× | {checks[timed.name]} | {timed.note} |")
    return "\n".join(rows)


def memory_table(banks: list[BankFigures]) -> str:
    rows = ["| bank entries | index | load ms | RSS before load MB | after load MB | after lookups MB | "
            "of which file-backed MB | peak while loading and searching MB |",
            "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for b in banks:
        lf = b.lookups
        if lf is None:
            continue
        m = lf.memory
        peak = f"{m.peak:.0f}" + ("" if m.peak_reset else " (VmHWM not reset: includes generation)")
        rows.append(f"| {b.size:,} | {lf.index_kind} | {lf.load_ms:.1f} | {m.before_load:.0f} | {m.after_load:.0f} | "
                    f"{m.after_lookups:.0f} | {m.after_lookups_file:.0f} | {peak} |")
    return "\n".join(rows)


def live_table(banks: list[BankFigures]) -> str:
    rows = ["| bank entries | import wall s | fresh `chanwatch lookup` wall s | import + lookup s | "
            "lookup peak RSS MB | planted entry returned at distance k |",
            "|---:|---:|---:|---:|---:|---|"]
    for b in banks:
        if b.live is None:
            continue
        run = b.live.run
        rows.append(f"| {b.size:,} | {b.imported.run.wall_s:.1f} | {run.wall_s:.2f} | "
                    f"{b.imported.run.wall_s + run.wall_s:.1f} | {run.peak_mb:.0f} | "
                    f"{'yes' if b.live.found else '**no**'} (k = {b.live.expected_distance}) |")
    return "\n".join(rows)


def count(report: dict[str, Any], key: str) -> str:
    """A count from a run report, formatted; a dash when the run wrote no report."""
    value = report.get("counts", {}).get(key)
    return f"{value:,}" if isinstance(value, int) else "–"


def match_table(m: MatchFigures) -> str:
    rows = ["| run | media rows | wall s | rows/s | peak RSS MB | rows searched | matches found | new |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, run, report in (("first", m.first, m.first_report), ("second (nothing new)", m.second,
                                                                      m.second_report)):
        counts = [count(report, key) for key in ("media_searched", "matches_found", "matches_new")]
        wall = f"{run.wall_s:.1f}" if run.ok else "failed"
        rate = f"{m.rows / run.wall_s:,.0f}" if run.ok else "–"
        rows.append(f"| `chanwatch match`, {label} | {m.rows:,} | {wall} | {rate} | {run.peak_mb:.0f} | "
                    + " | ".join(counts) + " |")
    if math.isfinite(m.brute_per_lookup_s):
        brute_s = m.brute_per_lookup_s * m.rows
        rows.append(f"| NumPy brute force, extrapolated from its measured {m.brute_per_lookup_s * 1000:.1f} "
                    f"ms/lookup | {m.rows:,} | {brute_s:,.0f} | {m.rows / brute_s:,.0f} | – | – | – | – |")
    return "\n".join(rows)


def check_lines(banks: list[BankFigures], match: MatchFigures | None, args: argparse.Namespace) -> list[str]:
    """PASS/FAIL per check and target; a step that failed to run fails its checks."""
    lines = []
    for b in banks:
        imp, lf, live = b.imported, b.lookups, b.live
        lines.append(f"- {verdict(imp.run.ok and imp.entries == b.size)}: {b.size:,} bank imported with "
                     f"{imp.entries:,} entries" + ("" if imp.run.ok else f" ({imp.run.failure()})"))
        if lf is None or live is None:
            continue
        lines += [
            f"- {verdict(lf.codes_match)}: loaded {b.size:,} bank holds exactly the generated codes, in order",
            f"- {verdict(lf.equal_brute)}: {b.size:,}: ours = NumPy brute force, same (query, code, distance) triples "
            f"on the {len(lf.brute_subset):,} queries brute force ran ({len(lf.brute.result[0]):,} triples)",
            f"- {verdict(lf.equal_faiss)}: {b.size:,}: ours = FAISS flat on all {lf.faiss.queries:,} queries "
            f"({len(lf.faiss.result[0]):,} triples)",
            f"- {verdict(lf.recall == 1.0)}: {b.size:,}: planted recall {lf.recall:.1%} ({lf.planted_found}/"
            f"{lf.planted} near-duplicates return their source entry at exactly distance k); "
            f"{lf.unexpected_hits} other hits",
            f"- {verdict(live.run.ok and live.found)}: {b.size:,}: a fresh `chanwatch lookup` right after the import "
            f"returns the planted entry ({b.imported.run.wall_s + live.run.wall_s:.1f} s from import start)",
        ]
    largest = max((b for b in banks if b.lookups), key=lambda b: b.size, default=None)
    if largest and largest.lookups:
        lf = largest.lookups
        speed = lf.batched.rate / lf.brute.rate
        lines.append(f"- {verdict(speed >= SPEEDUP_TARGET)}: ours at least {SPEEDUP_TARGET:g}× NumPy brute force "
                     f"lookups/s at {largest.size:,} entries (measured {speed:,.0f}× batched, "
                     f"{lf.single.rate / lf.brute.rate:,.0f}× one query per call)")
    if match is None:
        lines.append(f"- FAIL: match benchmark did not run (the {args.match_bank:,} bank import failed)")
        return lines
    pairs = float(match.rows) * match.bank_size
    lines += [
        f"- {verdict(match.first.ok and match.second.ok)}: both `chanwatch match` runs succeeded"
        + ("" if match.first.ok else f" ({match.first.failure()})")
        + ("" if match.second.ok else f" ({match.second.failure()})"),
        f"- {verdict(match.found == match.plan.planted and match.matched_planted == match.plan.planted)}: "
        f"match found {match.found:,} matches; planted {match.plan.planted:,}, of which "
        f"{match.matched_planted:,} found as exactly (message, source entry, distance k); {match.matched_other} "
        f"other match rows. Expected random hits: {pairs:.0e} pairs × P(d ≤ {PDQ_THRESHOLD}) = "
        f"{expected_random_hits(pairs):.0e}; NumPy brute force on {match.sample_rows} unplanted rows: "
        f"{match.sample_hits} hits",
        f"- {verdict(match.second.ok and match.second_report.get('counts', {}).get('media_searched') == 0)}: second "
        f"match run searched nothing ({count(match.second_report, 'media_searched')} rows)",
    ]
    return lines


def note_lines(banks: list[BankFigures], match: MatchFigures | None) -> list[str]:
    """Plain-words reading of the figures: where the time goes, and what fell short."""
    notes = []
    largest = max((b for b in banks if b.imported.run.ok), key=lambda b: b.size, default=None)
    if largest:
        imp, t = largest.imported, largest.imported.timings
        parts = ", ".join(f"{key} {t.get(f'{key}_s', 0):.0f} s" for key in ("parse", "index", "write"))
        notes.append(f"- Importing {largest.size:,} entries took {imp.run.wall_s:.0f} s ({parts}) at a peak of "
                     f"{imp.run.peak_mb:,.0f} MB, {imp.run.peak_mb * MB / imp.list_bytes:.1f}× the list file.")
    for b in banks:
        lf = b.lookups
        if lf is None:
            continue
        notes.append(f"- {b.size:,} entries ({lf.index_kind}): {1000 / lf.batched.rate:.2f} ms per lookup batched, "
                     f"{statistics.median(lf.single_ms):.2f} ms one per call, against {1000 / lf.brute.rate:,.0f} ms "
                     f"for NumPy brute force and {1000 / lf.faiss.rate:.2f} ms for FAISS flat (batched, 2 threads).")
    if match and match.first.ok:
        lookups = next((b.lookups for b in banks if b.size == match.bank_size and b.lookups), None)
        rows_per_s = match.rows / match.first.wall_s
        line = f"- `chanwatch match` checked {rows_per_s:,.0f} media rows/s on the {match.bank_size:,}-entry bank"
        if lookups:
            line += (f"; batched in-process lookups on the same bank run at {lookups.batched.rate:,.0f}/s, so the "
                     f"search itself accounts for about {min(1.0, rows_per_s / lookups.batched.rate):.0%} of the "
                     "match run's time (single-threaded NumPy multi-index hashing)")
        notes.append(line + ".")
    return notes


def machine_line() -> str:
    from importlib.metadata import version

    libs = ", ".join(f"{name} {version(name)}" for name in ("numpy", "faiss-cpu", "pyarrow", "duckdb"))
    return (f"{len(os.sched_getaffinity(0))} CPUs (nproc), {cpu_model()}, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM; Python {platform.python_version()}, {libs}")


def report(args: argparse.Namespace, banks: list[BankFigures], match: MatchFigures | None) -> list[str]:
    """The section body: tables and PASS/FAIL lines, the same on the terminal and in the markdown."""
    brute_rule = (f"all {args.queries:,} queries on banks up to {BRUTE_FULL_MAX:,} entries, "
                  f"{args.brute_queries_large} (half planted, half random) on larger ones")
    body = [
        f"Random PDQ-shaped codes (256 bits, seed {args.seed}), threshold distance ≤ {PDQ_THRESHOLD}. Queries: "
        f"{args.queries:,} per bank, half near-duplicates of bank entries (k distinct bits flipped, k uniform in "
        f"1..{PDQ_THRESHOLD}), half random. MB are 10^6 bytes. Peak RSS of a process is the larger of its "
        "ru_maxrss (wait4, from a small launcher) and its process tree's RSS sampled every 50 ms. Load average "
        f"(1 min) at start and end: {args.load_start:.1f}, {os.getloadavg()[0]:.1f}.",
        "",
        "### Import and index build (`chanwatch hashlist import`, whole process)",
        "",
        "The list is a bare-hex file (one 64-hex code per line, `--signal pdq`); parse/index/write are the import's "
        "own run-report timings.",
        "", import_table(banks), "",
        "### Lookups",
        "",
        f"In the benchmark process: the bank loaded with `HashBanks.load` (memory-mapped `.npy`), searched with "
        f"`binary_index.search`. Batched = all {args.queries:,} queries in one call; one per call = "
        f"{SINGLE_QUERIES} of them, one call each. NumPy brute force (`brute_force`, one query at a time, "
        f"`np.bitwise_count` over uint64 words) ran on {brute_rule}; FAISS flat (`FlatIndex`, "
        "IndexBinaryFlat range search) on all of them. “Same results” compares (query, code, distance) triples "
        "exactly.",
        "", lookup_table(banks), "",
        "Memory of the benchmark process (VmRSS; the generated codes are dropped before the load, and VmHWM is "
        "reset there). Index files are memory-mapped: their pages count in RSS once a search touches them (the "
        "kernel maps up to 64 KB around each faulting probe), as shared, reclaimable page cache (RssFile), not "
        "private memory. The same holds for the `chanwatch lookup` processes below:",
        "", memory_table(banks), "",
        "### A new list version goes live",
        "",
        "Right after the import process returns, a fresh `chanwatch lookup pdq:<hex>` process (start-up included) "
        "looks up a planted near-duplicate.",
        "", live_table(banks), "",
    ]
    if match:
        body += [
            f"### `chanwatch match`: {match.rows:,} media rows against the {match.bank_size:,}-entry bank",
            "",
            f"Media Parquet files written directly with the `media` schema ({match.plan.files} files, one per 50,000 "
            f"message ids; photos with PDQ quality 90, random MD5/SHA-256/pHash/dHash; no `messages` dataset); "
            f"{match.plan.planted:,} rows ({NEAR_SHARE:.0%}) carry a near-duplicate of a distinct bank entry "
            f"(k in 1..{PDQ_THRESHOLD}), the rest random PDQ. Generated in {match.generate_s:.1f} s.",
            "", match_table(match), "",
        ]
    body += ["### Notes", "", *note_lines(banks, match), "", "### Checks and targets", "",
             *check_lines(banks, match, args)]
    return body


def markdown_section(body: list[str], command: str, elapsed_s: float, version: str) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([SECTION_TITLE, "", f"Measured {when} on {machine_line()}; chanwatch at {version}; whole run "
                      f"{elapsed_s / 60:.1f} min.", "", f"Command: `{command}`", "", *body, ""])


# --- main ---------------------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int_list, default=[1_000_000, 10_000_000], help="bank sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=1000, help="lookup queries per bank (half planted)")
    parser.add_argument("--brute-queries-large", type=int, default=100,
                        help=f"queries NumPy brute force runs on banks over {BRUTE_FULL_MAX:,} entries")
    parser.add_argument("--match-rows", type=int, default=1_000_000, help="media rows for `chanwatch match`")
    parser.add_argument("--match-bank", type=int, default=1_000_000, help="bank size `chanwatch match` runs against")
    parser.add_argument("--match-sample", type=int, default=50,
                        help="unplanted media rows brute-forced to confirm they match nothing")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--markdown", type=Path, help="replace or append the results section in this file")
    parser.add_argument("--chanwatch", type=Path, default=DEFAULT_CHANWATCH, help="the chanwatch executable")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    args = parse_args(raw)
    args.chanwatch = args.chanwatch.resolve()
    args.load_start = os.getloadavg()[0]
    started = time.perf_counter()
    fingerprint, version = code_fingerprint(), code_version()
    workdir = Path(tempfile.mkdtemp(prefix="chanwatch-bench-hashlists-", dir="/tmp"))
    print(f"working in {workdir}", flush=True)
    try:
        banks = {size: bench_bank(args, workdir, size) for size in sorted(set(args.sizes))}
        match = bench_match(args, workdir, banks)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    body = report(args, [banks[size] for size in sorted(set(args.sizes))], match)
    if code_fingerprint() != fingerprint:
        body.append("- FAIL: the measured code changed during this run; the figures mix versions, run again")
    print("\n" + "\n".join(body) + f"\n\nwhole run: {elapsed / 60:.1f} min")
    if args.markdown:
        command = shlex.join(["python", "bench/bench_hashlists.py", *raw])
        replace_section(args.markdown, SECTION_TITLE, markdown_section(body, command, elapsed, version))
        print(f"\nwrote section {SECTION_TITLE!r} to {args.markdown}")
    return 1 if any(line.startswith("- FAIL") for line in body) else 0


if __name__ == "__main__":
    sys.exit(main())
