"""The review app under load: concurrent analysts over a large queue, against the real server.

1. A fresh storage root in a temporary directory gets `--items` synthetic media items that matched
   (tests/review_data.py `many_matches`, 200 channels: about 1.25 matches an item), the review
   database (SQLite, the default URL under the root) is migrated and filled by the real sync, and
   `--clients` analyst accounts are added. Build and sync are timed.
2. In this process, on that database: naive OFFSET paging (the app's filter and sort with
   `.offset(depth)`) against the app's keyset paging (`review.queue.queue_page` with the cursor its
   "Next page" link would carry at the same depth), on the first page and at 90% of the queue.
   Both include the queue's total count, as the page shows it; their rows must be equal.
3. `chanwatch --storage ROOT review serve --no-sync --workers N` runs as a separate process (for
   each N of `--workers`). All clients log in at once through the real form (GET /login for the
   CSRF cookie and hidden field, POST /login; a login that fails is counted and retried alone).
   Then four phases of `--seconds` each, every client a thread with its own httpx.Client:
   - baseline: all clients GET /static/app.css in a closed loop, the server's floor for a trivial
     response through the same middleware, event loop and client;
   - one analyst alone in a closed loop: the pages' service time without queueing;
   - all analysts in a closed loop, no think time: the stress case;
   - all analysts with a think time between requests (exponential, mean `--think-ms`; each starts
     after a random delay of up to that mean, so they do not arrive at once): the target.
   An analyst's round: the queue's first page with random filters (status, list, category,
   channel, signal type; sort by distance, oldest or newest), 1 to 5 "Next page" links followed
   (the page's `id="next-page"` href), then 1 to 3 evidence pages `/items/{id}` of items from
   those pages or random ones. Latency is taken per request by page kind; any response but 200
   is an error. The server's RSS (its whole process tree) is sampled throughout, and the CPU used
   by the server and by other processes on the machine is reported per phase (noise).

    python bench/bench_review.py [--items 100000] [--clients 20] [--seconds 30] [--workers 1 2]
                                 [--think-ms 1000] [--markdown docs/benchmarks.md]

Exit status: 0 when there were no errors or failed logins and, with think time, p95 of the queue
and evidence pages is under the target (200 ms) for every worker count; 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import math
import random
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from sqlalchemy import func, select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import TreeSampler, clean_env, cpu_model, replace_section, tree_rss
from review import queue
from review.accounts import add_user
from review.config import ReviewSettings
from storage.reviewdb.engine import default_url, migrate, open_engine, session_factory
from storage.reviewdb.models import Item
from storage.reviewdb.sync import sync_matches
from storage.store import Store
from tests.review_data import many_matches, write_datasets

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 200.0
NOISY_CORES = 0.25  # CPU of other processes in a phase above which the run is flagged as noisy
PASSWORD = "bench-analyst-password"
KINDS = ("static", "queue_first", "queue_deep", "evidence")
TARGET_KINDS = ("queue_first", "queue_deep", "evidence")
ITEM_LINK = re.compile(r'href="/items/(\d+)"')
NEXT_LINK = re.compile(r'<a href="([^"]+)" id="next-page">')
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


# -- build -------------------------------------------------------------------------------------------

@dataclass
class Built:
    root: Path
    n_items: int
    n_matches: int
    build_s: float
    sync_s: float
    users_s: float
    item_ids: list[int]
    facets: dict[str, list[str]]
    db_mb: float


def build(root: Path, n_items: int, n_users: int) -> Built:
    t0 = time.perf_counter()
    matches = many_matches(n_items, channels=200)
    write_datasets(root, matches)
    build_s = time.perf_counter() - t0
    engine = open_engine(default_url(root))
    migrate(engine)
    sessions = session_factory(engine)
    t0 = time.perf_counter()
    counts = sync_matches(Store(str(root)), sessions, {}).counts
    sync_s = time.perf_counter() - t0
    assert counts["items_new"] == n_items and counts["matches_new"] == len(matches), counts
    t0 = time.perf_counter()
    settings = ReviewSettings()
    with sessions() as session:
        for i in range(n_users):
            add_user(session, f"analyst{i:02d}", "analyst", PASSWORD, settings, actor="bench")
        session.commit()
    users_s = time.perf_counter() - t0
    with sessions() as session:
        item_ids = list(session.scalars(select(Item.id)))
        facets = queue.facets(session)
    engine.dispose()
    db = Path(default_url(root).removeprefix("sqlite:///"))
    return Built(root, n_items, len(matches), build_s, sync_s, users_s, item_ids, facets,
                 db.stat().st_size / 1e6)


# -- OFFSET against keyset, in process ---------------------------------------------------------------

@dataclass
class PagingRow:
    sort: str
    depth: int
    offset_ms: float
    keyset_ms: float
    count_ms: float


def _median_ms(fn, *args, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def _count(session: Session, f: queue.QueueFilter) -> int:
    return session.scalar(select(func.count()).select_from(queue._filtered(f).subquery())) or 0


def _by_offset(session: Session, f: queue.QueueFilter, depth: int, page_size: int) -> list[int]:
    """What an OFFSET-paged queue would run: the same filter, sort and count, then OFFSET depth."""
    _count(session, f)
    ordered = queue._filtered(f).order_by(*queue._sort_key(f))
    return [i.id for i in session.scalars(ordered.offset(depth).limit(page_size + 1))][:page_size]


def _by_keyset(session: Session, f: queue.QueueFilter, cursor: str | None, page_size: int) -> list[int]:
    return [i.id for i in queue.queue_page(session, f, cursor, page_size).items]


def offset_vs_keyset(root: Path, page_size: int) -> list[PagingRow]:
    """The app's queue page at the same depth by OFFSET and by keyset cursor (medians of 5)."""
    engine = open_engine(default_url(root))
    rows = []
    with session_factory(engine)() as session:
        for sort in ("distance", "newest"):
            f = queue.QueueFilter(sort=sort).normalised()
            deep = max(0, (int(_count(session, f) * 0.9) // page_size) * page_size)
            for depth in sorted({0, deep}):
                cursor = None
                if depth:  # the cursor the app's "Next page" link would carry at this depth
                    ordered = queue._filtered(f).order_by(*queue._sort_key(f))
                    cursor = queue._encode(session.scalars(ordered.offset(depth - 1).limit(1)).one(), f)
                assert _by_offset(session, f, depth, page_size) == _by_keyset(session, f, cursor, page_size), \
                    f"OFFSET and keyset disagree at depth {depth}"
                rows.append(PagingRow(sort, depth, _median_ms(_by_offset, session, f, depth, page_size),
                                      _median_ms(_by_keyset, session, f, cursor, page_size),
                                      _median_ms(_count, session, f)))
    engine.dispose()
    return rows


# -- load ---------------------------------------------------------------------------------------------

@dataclass
class Recorder:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, client: httpx.Client, kind: str, url: str) -> str | None:
        t0 = time.perf_counter()
        try:
            response = client.get(url)
            status, body = response.status_code, response.text
        except httpx.HTTPError as exc:
            status, body = None, f"{type(exc).__name__}: {exc}"
        ms = (time.perf_counter() - t0) * 1000
        with self.lock:
            self.latencies[kind].append(ms)
            if status != 200:
                self.errors[kind] += 1
                if len(self.error_samples) < 10:
                    self.error_samples.append(f"{kind} {url} -> {status}: {body[:200]!r}")
        return body if status == 200 else None


def login(client: httpx.Client, name: str) -> str | None:
    """Log in through the form; None when it worked, else what went wrong."""
    form = client.get("/login")
    token = CSRF_FIELD.search(form.text)
    if form.status_code != 200 or token is None:
        return f"login form: HTTP {form.status_code}"
    response = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token.group(1)})
    if response.status_code != 303 or response.headers.get("location") != "/queue":
        return f"login of {name}: HTTP {response.status_code} {response.text[:100]!r}"
    return None


def login_all(clients: list[httpx.Client], new_client) -> tuple[float, list[str]]:
    """All clients log in at once (a shift starting); any that failed log in again one at a time.

    A failed client is replaced by a fresh one first: after a 500 the server may close the connection
    the old client would reuse.
    """
    failures: dict[int, str] = {}

    def one(i: int) -> None:
        try:
            problem = login(clients[i], f"analyst{i:02d}")
        except httpx.HTTPError as exc:
            problem = f"login of analyst{i:02d}: {type(exc).__name__} {exc}"
        if problem:
            failures[i] = problem

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    for i in sorted(failures):
        clients[i].close()
        clients[i] = new_client()
        problem = login(clients[i], f"analyst{i:02d}")
        if problem:
            raise RuntimeError(f"{problem} (also one at a time)")
    return elapsed, [failures[i] for i in sorted(failures)]


def random_filter(rng: random.Random, facets: dict[str, list[str]]) -> dict[str, str]:
    params = {"status": rng.choice(("open",) * 6 + ("new", "all")), "sort": rng.choice(queue.SORTS)}
    for key, facet, chance in (("list", "list_name", 0.3), ("category", "category", 0.3),
                               ("channel", "channel", 0.2), ("signal", "signal_type", 0.2)):
        if facets[facet] and rng.random() < chance:
            params[key] = rng.choice(facets[facet])
    return params


def analyst_session(client: httpx.Client, rec: Recorder, rng: random.Random, built: Built,
                    deadline: float, think_s: float) -> None:
    """One round of an analyst's work: a filtered queue, a few pages on, a few evidence pages."""
    def think() -> None:
        if think_s:
            time.sleep(min(rng.expovariate(1 / think_s), max(0.0, deadline - time.monotonic())))

    body = rec.get(client, "queue_first", "/queue?" + str(httpx.QueryParams(random_filter(rng, built.facets))))
    think()
    seen = [int(i) for i in ITEM_LINK.findall(body or "")]
    for _ in range(rng.randint(1, 5)):
        link = NEXT_LINK.search(body or "")
        if link is None or time.monotonic() >= deadline:
            break
        body = rec.get(client, "queue_deep", html.unescape(link.group(1)))
        seen += [int(i) for i in ITEM_LINK.findall(body or "")]
        think()
    for _ in range(rng.randint(1, 3)):
        if time.monotonic() >= deadline:
            break
        item_id = rng.choice(seen) if seen and rng.random() < 0.5 else rng.choice(built.item_ids)
        rec.get(client, "evidence", f"/items/{item_id}")
        think()


@dataclass(frozen=True)
class Phase:
    name: str
    label: str
    clients: int  # 0: all of them
    think_ms: float
    static: bool = False


def phases_for(think_ms: float) -> list[Phase]:
    return [Phase("static", "baseline: `/static/app.css`, all clients, closed loop", 0, 0, static=True),
            Phase("solo", "one analyst alone, closed loop (service time, no queueing)", 1, 0),
            Phase("closed", "all analysts, closed loop (no think time: the stress case)", 0, 0),
            Phase("think", f"all analysts, {think_ms / 1000:g} s mean think time between requests", 0, think_ms)]


@dataclass
class PhaseResult:
    rec: Recorder
    elapsed: float
    server_cores: float  # CPU the server's process tree used, in cores
    other_cores: float  # CPU used by everything else on the machine but this process (noise)


def run_phase(clients: list[httpx.Client], seconds: float, worker, server: psutil.Process) -> PhaseResult:
    rec = Recorder()
    me = psutil.Process()
    server0, me0, sys0 = tree_cpu(server), sum(me.cpu_times()[:2]), psutil.cpu_times()
    start = time.monotonic()
    deadline = start + seconds
    threads = [threading.Thread(target=worker, args=(i, c, rec, deadline), daemon=True)
               for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    sys1 = psutil.cpu_times()
    busy = (sum(sys1) - sys1.idle - getattr(sys1, "iowait", 0)) - (sum(sys0) - sys0.idle - getattr(sys0, "iowait", 0))
    server_s, me_s = tree_cpu(server) - server0, sum(me.cpu_times()[:2]) - me0
    return PhaseResult(rec, elapsed, server_s / elapsed, max(0.0, busy - server_s - me_s) / elapsed)


@dataclass
class LoadResult:
    workers: int
    phases: dict[str, PhaseResult]
    rss_login_peak_mb: float
    rss_load_peak_mb: float
    rss_end_mb: float
    login_s: float
    login_failures: list[str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_cpu(proc: psutil.Process) -> float:
    total = 0.0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for member in members:
        try:
            times = member.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def start_server(built: Built, workers: int, workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "chanwatch.cli", "--storage", str(built.root), "review", "serve",
           "--host", "127.0.0.1", "--port", str(port), "--no-sync", "--workers", str(workers)]
    env = clean_env()
    env["PYTHONPATH"] = str(REPO)
    log_out, log_err = workdir / f"server-{workers}.out", workdir / f"server-{workers}.err"
    with log_out.open("wb") as out, log_err.open("wb") as err:  # cwd: no chanwatch.toml, so no [review] keys
        server = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    limit = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}: {log_err.read_text()[-2000:]}")
        try:
            if httpx.get(base + "/login", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > limit:
            server.terminate()
            raise RuntimeError("server did not answer within 120 s")
        time.sleep(0.2)
    proc = psutil.Process(server.pid)
    while workers > 1 and len(proc.children(recursive=True)) < workers + 1 and time.monotonic() < limit:
        time.sleep(0.2)  # uvicorn's supervisor: N workers (and multiprocessing's resource tracker)
    return server, base


def load(built: Built, workers: int, n_clients: int, seconds: float, think_ms: float, workdir: Path,
         seed: int) -> LoadResult:
    server, base = start_server(built, workers, workdir)
    proc = psutil.Process(server.pid)
    clients: list[httpx.Client] = []
    try:
        def new_client() -> httpx.Client:
            return httpx.Client(base_url=base, timeout=60, follow_redirects=False)

        sampler = TreeSampler(server.pid)
        sampler.start()
        clients = [new_client() for _ in range(n_clients)]
        login_s, login_failures = login_all(clients, new_client)
        sampler.stop.set()
        sampler.join()
        rss_login = sampler.peak
        for c in clients:
            if "cw_session" not in c.cookies:
                raise RuntimeError("a client has no session after logging in")
        warm = Recorder()  # one page of each kind per client, not recorded: SQLite's page cache, Jinja's templates
        for c in clients:
            warm.get(c, "queue", "/queue")
            warm.get(c, "evidence", f"/items/{built.item_ids[0]}")

        sampler = TreeSampler(server.pid)
        sampler.start()
        results = {}
        for phase in phases_for(think_ms):
            def worker(i: int, client: httpx.Client, rec: Recorder, deadline: float, phase: Phase = phase) -> None:
                rng = random.Random(seed * 1000 + i)
                if phase.think_ms:  # analysts arrive at random, not all in the same millisecond
                    time.sleep(rng.uniform(0, phase.think_ms / 1000))
                while time.monotonic() < deadline:
                    if phase.static:
                        rec.get(client, "static", "/static/app.css")
                    else:
                        analyst_session(client, rec, rng, built, deadline, phase.think_ms / 1000)

            results[phase.name] = run_phase(clients[:phase.clients or None], seconds, worker, proc)
        rss_end = tree_rss(proc)
        sampler.stop.set()
        sampler.join()
        return LoadResult(workers, results, rss_login / 1e6, max(sampler.peak, rss_end) / 1e6, rss_end / 1e6,
                          login_s, login_failures)
    finally:
        for c in clients:
            c.close()
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# -- report -------------------------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


LABELS = {"static": "`/static/app.css`", "queue_first": "queue, first page", "queue_deep": "queue, next pages",
          "evidence": "evidence `/items/{id}`"}


def load_table(result: LoadResult, think_ms: float) -> tuple[list[str], int]:
    lines = ["| phase | page | requests | p50 ms | p95 ms | p99 ms | req/s | errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    errors = 0
    for phase in phases_for(think_ms):
        r = result.phases[phase.name]
        first = True
        for kind in KINDS:
            if kind not in r.rec.latencies:
                continue
            values = r.rec.latencies[kind]
            errors += r.rec.errors.get(kind, 0)
            lines.append(f"| {phase.label if first else ''} | {LABELS[kind]} | {len(values):,} | {pct(values, 50):.1f} "
                         f"| {pct(values, 95):.1f} | {pct(values, 99):.1f} | {len(values) / r.elapsed:,.1f} "
                         f"| {r.rec.errors.get(kind, 0)} |")
            first = False
    return lines, errors


def verdict(result: LoadResult, phase: str) -> tuple[str, bool]:
    rec = result.phases[phase].rec
    parts, ok = [], True
    for kind in TARGET_KINDS:
        if not rec.latencies.get(kind):
            ok = False
            parts.append(f"{kind} no requests FAIL")
            continue
        p95 = pct(rec.latencies[kind], 95)
        passed = p95 < TARGET_MS
        ok = ok and passed
        parts.append(f"{kind} {p95:.0f} ms {'PASS' if passed else 'FAIL'}")
    return ", ".join(parts), ok


def login_line(result: LoadResult) -> str:
    n = len(result.login_failures)
    line = f"all clients logging in at once took {result.login_s:.1f} s"
    if not n:
        return line + ", none failed"
    kinds = sorted({m.group(0) for f in result.login_failures if (m := re.search(r"HTTP \d+|\w+Error", f))})
    return line + f"; {n} of those logins FAILED ({', '.join(kinds)}) and succeeded one at a time afterwards"


def summary(result: LoadResult, think_ms: float) -> list[str]:
    cpu = "; ".join(f"{p.name} {result.phases[p.name].server_cores:.2f} server, "
                    f"{result.phases[p.name].other_cores:.2f} other" for p in phases_for(think_ms))
    think, closed = verdict(result, "think")[0], verdict(result, "closed")[0]
    return [f"- Target p95 < {TARGET_MS:.0f} ms with think time: {think}. Closed loop: {closed}.",
            f"- Server RSS (process tree): peak {result.rss_login_peak_mb:.0f} MB while the clients logged in, "
            f"peak {result.rss_load_peak_mb:.0f} MB under load, {result.rss_end_mb:.0f} MB at the end.",
            f"- CPU in cores (the server's process tree; other processes on the machine, not this one): {cpu}.",
            f"- Logins: {login_line(result)}.", *noise_line(result)]


def noise_line(result: LoadResult) -> list[str]:
    """A warning when other processes took a noticeable share of the machine during a phase."""
    noisy = {name: r.other_cores for name, r in result.phases.items() if r.other_cores >= NOISY_CORES}
    if not noisy:
        return []
    worst = max(noisy.values())
    return [f"- Noisy run: other processes used up to {worst:.2f} of {psutil.cpu_count()} cores (phases "
            f"{', '.join(noisy)}), so these latencies are pessimistic; compare with the baseline of the same run."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each of the four phases")
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="server processes; several values "
                        "run the load once per value against the same database")
    parser.add_argument("--think-ms", type=float, default=1000.0, help="mean think time between an analyst's "
                        "requests in the think-time phase (exponential)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    page_size = ReviewSettings().page_size
    command = "python bench/bench_review.py " + shlex.join(sys.argv[1:])

    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        workdir = Path(tmp)
        built = build(workdir / "data", args.items, args.clients)
        print(f"built {args.items:,} items / {built.n_matches:,} matches as Parquet in {built.build_s:.1f} s; "
              f"sync into the review DB {built.sync_s:.1f} s ({built.n_items / built.sync_s:,.0f} items/s); "
              f"{args.clients} accounts in {built.users_s:.1f} s; review.db {built.db_mb:.0f} MB", flush=True)
        paging = offset_vs_keyset(built.root, page_size)
        for row in paging:
            print(f"sort {row.sort}, depth {row.depth:,}: OFFSET {row.offset_ms:.1f} ms, keyset "
                  f"{row.keyset_ms:.1f} ms (the exact count alone {row.count_ms:.1f} ms)", flush=True)
        results = []
        for workers in args.workers:
            result = load(built, workers, args.clients, args.seconds, args.think_ms, workdir, args.seed)
            results.append(result)
            table, errors = load_table(result, args.think_ms)
            ok = ok and errors == 0 and not result.login_failures and verdict(result, "think")[1]
            print(f"\n--workers {workers}: {args.clients} clients, {args.seconds:.0f} s a phase", flush=True)
            print("\n".join(table + summary(result, args.think_ms)), flush=True)
            for phase in result.phases.values():
                for sample in phase.rec.error_samples:
                    print("  error:", sample)

    lines = [f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {cpu_model()} "
             f"({psutil.cpu_count()} cores; the load generator runs on the same machine).", "",
             f"Command: `{command}`", "",
             f"Data: {args.items:,} items with {built.n_matches:,} matches (tests/review_data.py, 200 channels), "
             f"written as Parquet in {built.build_s:.1f} s; the real sync into the review database (SQLite, "
             f"{built.db_mb:.0f} MB) took {built.sync_s:.1f} s ({args.items / built.sync_s:,.0f} items/s); "
             f"{args.clients} analyst accounts (argon2) in {built.users_s:.1f} s.", "",
             f"Load: the real server (`chanwatch review serve --no-sync`), {args.clients} clients each logged in "
             f"through the login form, {args.seconds:.0f} s a phase. An analyst's round: the queue with random "
             "filters (status, list, category, channel, signal) and sort, 1-5 \"Next page\" links followed, 1-3 "
             "evidence pages of items from those pages or random. The static file is the floor: the same "
             "middleware, event loop and client with no work behind them. Any response but 200 is an error. "
             f"Target: p95 under {TARGET_MS:.0f} ms for the queue and evidence pages with {args.clients} analysts "
             "(the think-time phase; the closed loop is the stress case)."]
    for result in results:
        table, _ = load_table(result, args.think_ms)
        lines += ["", f"**`--workers {result.workers}`** ({result.workers} server process"
                  f"{'es' if result.workers > 1 else ''}):", "", *table, "", *summary(result, args.think_ms)]
    lines += ["", f"Why keyset paging (in process, same database, medians of 5, page of {page_size}; both "
              "include the queue's total count, as the page shows it):", "",
              "| sort | depth | OFFSET ms | keyset `queue_page` ms | the exact count alone ms |",
              "|---|---:|---:|---:|---:|"]
    lines += [f"| {r.sort} | {r.depth:,} | {r.offset_ms:.1f} | {r.keyset_ms:.1f} | {r.count_ms:.1f} |" for r in paging]
    text = "\n".join(lines)
    if args.markdown:
        title = "## Review app under load"
        replace_section(args.markdown, title, title + "\n\n" + text + "\n")
    print("\n" + ("all checks passed" if ok else "FAILED: errors, failed logins or a p95 over the target"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
