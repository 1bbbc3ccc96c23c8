"""The `aggregate` step: build the research aggregates, recomputing only the days whose inputs changed.

1. Fingerprint every input file (`messages`, `media`, `matches`) from the directory: size, mtime_ns, inode.
2. Files that are new or whose fingerprint moved are read once, into per (file, channel, day) digests of
   the columns the aggregates use; files that vanished drop out of the state.
3. A channel-day whose digest, summed over its files, changed is recomputed; so is a day of
   `matches_daily` whose matches changed. Everything runs in DuckDB over the Parquet files (memory capped),
   reading only the files that hold the channel-days to recompute.
4. Each affected month file is merged (untouched rows kept as they are; a recomputed row with the same
   values keeps its `computed_at`) and rewritten only when its content changed. Forward edges are kept as
   per-day partial counts and the single edges file is rebuilt from them.
5. The state is written last: a crash before it means the next run redoes the same days, never skips them.

`full=True` ignores the state and recomputes everything, still rewriting only files whose content differs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from chanwatch.runs import new_run_id, now_micros
from chanwatch.settings import Settings
from processing.aggregates import (
    ALGORITHM_VERSION,
    changed_pairs_sql,
    channel_daily_sql,
    digest_sql,
    edge_partials_sql,
    edges_sql,
    matches_daily_sql,
    merge_sql,
    source_sql,
)
from storage.aggregates import (
    EDGE_PARTIALS_KEY,
    EDGE_PARTIALS_SCHEMA,
    INPUTS,
    STATE_SCHEMA,
    STATE_SORT,
    edges_path,
    existing_months,
    input_fingerprints,
    month_path,
    partials_dir,
    partials_path,
    read_state,
    read_table,
    remove_file,
    row_count,
    write_state,
    write_table,
)
from storage.checkpoints import write_run_report
from storage.objectstore import connect_duckdb
from storage.schemas import CHANNEL_DAILY, FORWARD_EDGES, MATCHES, MATCHES_DAILY, MEDIA, MESSAGES, DatasetSpec
from storage.store import Store

log = logging.getLogger("chanwatch.aggregate")
MEMORY_LIMIT = "1GB"
THREADS = 2
# (stage, done, total): stages are "digest" (input files read) and "write" (output files considered).
ProgressCallback = Callable[[str, int, int], None]
VIEWS = {MESSAGES.name: "msg", MEDIA.name: "med", MATCHES.name: "mat"}


@dataclass
class AggregateResult:
    run_id: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def state_tag() -> str:
    """What the stored digests and outputs were computed with; any difference forces a full run."""
    versions = ",".join(f"{s.name}={s.version}" for s in (*INPUTS, CHANNEL_DAILY, FORWARD_EDGES, MATCHES_DAILY))
    return f"algorithm={ALGORITHM_VERSION};duckdb={duckdb.__version__};{versions}"


class Aggregator:
    def __init__(self, settings: Settings, *, full: bool, progress: ProgressCallback | None) -> None:
        self.store = Store(settings.storage_root)
        self.full = full
        self.progress = progress
        self.run_id = new_run_id("aggregate")
        self.result = AggregateResult(self.run_id)
        self.counts = self.result.counts
        self.now = dt.datetime.fromtimestamp(now_micros() / 1_000_000, dt.UTC)
        self.prefix = str(self.store.root.resolve() if self.store.is_local else self.store.root) + "/"
        self.con: duckdb.DuckDBPyConnection

    def run(self) -> AggregateResult:
        started = time.perf_counter()
        with self.store.writer_lock():
            spill = tempfile.mkdtemp(prefix="chanwatch-aggregate-")
            self.con = connect_duckdb(self.store.root, {"memory_limit": MEMORY_LIMIT, "threads": THREADS,
                                                        "temp_directory": spill, "preserve_insertion_order": False})
            try:
                self.con.execute("SET TimeZone = 'UTC'")
                self.con.execute("SET enable_progress_bar = false")
                self._run()
            finally:
                self.con.close()
                shutil.rmtree(spill, ignore_errors=True)
        self.result.seconds = time.perf_counter() - started
        write_run_report(self.store, self.run_id, {"run_id": self.run_id, "step": "aggregate",
                                                   "counts": self.counts, "seconds": self.result.seconds})
        log.info("event=aggregate.done run=%s %s seconds=%.2f", self.run_id,
                 " ".join(f"{k}={v}" for k, v in self.counts.items()), self.result.seconds)
        return self.result

    # --- state: which channel-days changed -------------------------------------------------------

    def _run(self) -> None:
        con, c = self.con, self.counts
        tag = state_tag()
        current = input_fingerprints(self.store)
        stored, stored_tag = read_state(self.store)
        full = self.full or stored is None or stored_tag != tag
        old = STATE_SCHEMA.empty_table() if full else stored
        con.register("cur", current)
        con.register("old_state", old)
        changed = con.sql("SELECT * FROM cur ANTI JOIN old_state USING (dataset, path, size, mtime_ns, inode) "
                          "ORDER BY dataset, path").to_arrow_table()
        con.register("changed_files", changed)
        c.update(full=int(full), input_files=current.num_rows, files_digested=changed.num_rows,
                 files_new=self._scalar("SELECT count(*) FROM changed_files ANTI JOIN old_state USING (dataset, path)"),
                 files_removed=self._scalar("SELECT count(DISTINCT path) FROM old_state ANTI JOIN cur "
                                            "USING (dataset, path)"))
        log.info("event=aggregate.inputs run=%s full=%d files=%d digested=%d new=%d removed=%d", self.run_id,
                 full, c["input_files"], c["files_digested"], c["files_new"], c["files_removed"])

        con.register("fresh_digests", self._digest(changed))
        new_state = con.sql(
            "SELECT * FROM old_state SEMI JOIN cur USING (dataset, path, size, mtime_ns, inode) UNION ALL "
            "SELECT f.dataset, f.path, f.size, f.mtime_ns, f.inode, d.channel_id, d.day, d.rows, d.digest "
            "FROM changed_files f LEFT JOIN fresh_digests d USING (dataset, path)").to_arrow_table()
        new_state = new_state.cast(STATE_SCHEMA).sort_by(STATE_SORT)
        con.register("new_state", new_state)
        con.execute(f"CREATE OR REPLACE TEMP TABLE changed_pairs AS {changed_pairs_sql('old_state', 'new_state')}")
        con.execute("CREATE OR REPLACE TEMP TABLE all_pairs AS SELECT DISTINCT dataset, channel_id, day, "
                    "strftime(day, '%Y-%m') AS month FROM new_state WHERE day IS NOT NULL")

        # What to recompute: channel-days for channel_daily and the edges, days for matches_daily.
        con.execute("CREATE OR REPLACE TEMP TABLE p_daily AS SELECT DISTINCT channel_id, day FROM changed_pairs")
        con.execute("CREATE OR REPLACE TEMP TABLE p_edges AS SELECT DISTINCT channel_id, day FROM changed_pairs "
                    f"WHERE dataset IN ('{MESSAGES.name}', '{MATCHES.name}')")
        con.execute("CREATE OR REPLACE TEMP TABLE d_matches AS SELECT DISTINCT day FROM changed_pairs "
                    f"WHERE dataset = '{MATCHES.name}'")
        if not full:
            self._add_missing_outputs()
        c["channel_days_recomputed"] = self._scalar("SELECT count(*) FROM p_daily")
        c["channel_days_unchanged"] = self._scalar(
            "SELECT count(*) FROM (SELECT DISTINCT channel_id, day FROM all_pairs) ANTI JOIN p_daily "
            "USING (channel_id, day)")
        c["days_recomputed"] = self._scalar(
            "SELECT count(*) FROM (SELECT day FROM p_daily UNION SELECT day FROM p_edges UNION SELECT day FROM "
            "d_matches)")
        c["days_unchanged"] = self._scalar(
            "SELECT count(*) FROM (SELECT DISTINCT day FROM all_pairs) ANTI JOIN (SELECT day FROM p_daily UNION "
            "SELECT day FROM p_edges UNION SELECT day FROM d_matches) USING (day)")
        c.update(months_written=0, months_removed=0, rows_changed=0, rows_removed=0, edge_partials_written=0,
                 edges_written=0)

        self._channel_daily(full)
        self._matches_daily(full)
        edges_due = self._edge_partials(full)
        self._edges(full or edges_due)
        if stored is None or stored_tag != tag or not new_state.equals(stored):
            write_state(self.store, new_state, tag)
            c["state_written"] = 1
        else:
            c["state_written"] = 0

    def _scalar(self, sql: str) -> int:
        return int(self.con.execute(sql).fetchall()[0][0])

    def _report(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    def _view(self, name: str, dataset: str, paths: list[str]) -> None:
        files = [self.prefix + p for p in paths]
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {source_sql(dataset, files, self.prefix)}")

    def _digest(self, changed: pa.Table) -> pa.Table:
        parts = []
        datasets = changed["dataset"].to_pylist()
        paths = changed["path"].to_pylist()
        done = 0
        for spec in INPUTS:
            files = [p for d, p in zip(datasets, paths, strict=True) if d == spec.name]
            if files:
                self._view("digest_source", spec.name, files)
                parts.append(self.con.sql(digest_sql(spec.name, "digest_source")).to_arrow_table())
            done += len(files)
            self._report("digest", done, len(paths))
        schema = pa.schema([STATE_SCHEMA.field(n) for n in ("dataset", "path", "channel_id", "day", "rows", "digest")])
        return pa.concat_tables([p.cast(schema) for p in parts]) if parts else schema.empty_table()

    def _add_missing_outputs(self) -> None:
        """Months whose output file is missing (deleted by hand, say) are recomputed whole."""
        con = self.con
        daily = existing_months(self.store.dataset_dir(CHANNEL_DAILY))
        matches = existing_months(self.store.dataset_dir(MATCHES_DAILY))
        partials = existing_months(partials_dir(self.store))
        con.register("have_daily", pa.table({"month": sorted(daily)}, schema=pa.schema([("month", pa.string())])))
        con.register("have_matches", pa.table({"month": sorted(matches)}, schema=pa.schema([("month", pa.string())])))
        con.register("have_partials", pa.table({"month": sorted(partials)},
                                               schema=pa.schema([("month", pa.string())])))
        con.execute("INSERT INTO p_daily SELECT DISTINCT channel_id, day FROM all_pairs ANTI JOIN have_daily "
                    "USING (month) EXCEPT SELECT * FROM p_daily")
        con.execute(f"INSERT INTO d_matches SELECT DISTINCT day FROM all_pairs WHERE dataset = '{MATCHES.name}' "
                    "AND month NOT IN (SELECT month FROM have_matches) EXCEPT SELECT * FROM d_matches")
        con.execute("INSERT INTO p_edges SELECT DISTINCT channel_id, day FROM all_pairs "
                    f"WHERE dataset IN ('{MESSAGES.name}', '{MATCHES.name}') AND month IN (SELECT month FROM "
                    f"all_pairs WHERE dataset = '{MESSAGES.name}' EXCEPT SELECT month FROM have_partials) "
                    "EXCEPT SELECT * FROM p_edges")

    def _files_for(self, scope: str, using: str) -> dict[str, list[str]]:
        """Input files (per dataset) holding rows of the channel-days or days in the relation `scope`."""
        rows = self.con.sql(f"SELECT DISTINCT dataset, path FROM new_state SEMI JOIN {scope} USING ({using}) "
                            "ORDER BY ALL").fetchall()
        files: dict[str, list[str]] = {spec.name: [] for spec in INPUTS}
        for dataset, path in rows:
            files[dataset].append(path)
        return files

    def _views_for(self, scope: str | None) -> None:
        """Views `msg`, `med`, `mat` over the files of the channel-days in `scope` (None: every file)."""
        if scope is None:
            files = self._files_for("(SELECT DISTINCT channel_id, day FROM new_state WHERE day IS NOT NULL)",
                                    "channel_id, day")
        else:
            files = self._files_for(scope, "channel_id, day")
        for dataset, paths in files.items():
            self._view(VIEWS[dataset], dataset, paths)

    # --- outputs -------------------------------------------------------------------------------

    def _in_month(self, select: str, month: str) -> pa.Table:
        return self.con.sql(f"{select} WHERE strftime(day, '%Y-%m') = $m", params={"m": month}).to_arrow_table()

    def _months(self, table: str, full: bool, existing: set[str]) -> list[str]:
        months = {m for (m,) in self.con.sql(f"SELECT DISTINCT strftime(day, '%Y-%m') FROM {table}").fetchall()}
        return sorted(months | existing if full else months)

    def _channel_daily(self, full: bool) -> None:
        con = self.con
        months = self._months("p_daily", full, existing_months(self.store.dataset_dir(CHANNEL_DAILY)))
        if not months:
            return
        self._views_for(None if full else "p_daily")
        con.execute("CREATE OR REPLACE TEMP TABLE fresh_daily AS "
                    + channel_daily_sql(pairs=None if full else "p_daily"))
        for i, month in enumerate(months):
            fresh = self._in_month("SELECT * FROM fresh_daily", month)
            scope = self._in_month("SELECT channel_id, day FROM p_daily", month)
            self._merge(CHANNEL_DAILY, month_path(self.store, CHANNEL_DAILY, month), fresh,
                        None if full else scope, ("channel_id", "day"))
            self._report("write", i + 1, len(months))

    def _matches_daily(self, full: bool) -> None:
        con = self.con
        months = self._months("d_matches", full, existing_months(self.store.dataset_dir(MATCHES_DAILY)))
        if not months:
            return
        files = self._files_for("(SELECT DISTINCT day FROM new_state WHERE day IS NOT NULL)" if full else "d_matches",
                                "day")
        self._view("mat", MATCHES.name, files[MATCHES.name])
        con.execute("CREATE OR REPLACE TEMP TABLE fresh_matches AS "
                    + matches_daily_sql(days=None if full else "d_matches"))
        for month in months:
            fresh = self._in_month("SELECT * FROM fresh_matches", month)
            scope = self._in_month("SELECT day FROM d_matches", month)
            self._merge(MATCHES_DAILY, month_path(self.store, MATCHES_DAILY, month), fresh,
                        None if full else scope, ("day",))

    def _edge_partials(self, full: bool) -> bool:
        """Refresh the per-day forward counts; True when the edges file must be rebuilt."""
        con = self.con
        months = self._months("p_edges", full, existing_months(partials_dir(self.store)))
        if not months:
            return False
        self._views_for(None if full else "p_edges")
        con.execute("CREATE OR REPLACE TEMP TABLE fresh_partials AS "
                    + edge_partials_sql(pairs=None if full else "p_edges"))
        with_messages = {m for (m,) in con.sql(f"SELECT DISTINCT month FROM all_pairs WHERE dataset = "
                                                 f"'{MESSAGES.name}'").fetchall()}
        for month in months:
            fresh = self._in_month("SELECT * FROM fresh_partials", month).cast(EDGE_PARTIALS_SCHEMA)
            scope = self._in_month("SELECT channel_id AS target_channel_id, day FROM p_edges", month)
            path = partials_path(self.store, month)
            stored = read_table(path, EDGE_PARTIALS_SCHEMA)
            con.register("stored", stored if stored is not None else EDGE_PARTIALS_SCHEMA.empty_table())
            con.register("fresh", fresh)
            con.register("scope", scope)
            merged = con.sql(merge_sql(EDGE_PARTIALS_SCHEMA.names, EDGE_PARTIALS_KEY,
                                       scope=None if full else ("target_channel_id", "day"))
                             ).to_arrow_table().cast(EDGE_PARTIALS_SCHEMA)
            # A month with messages keeps a file even without forwards, so a missing file is noticed.
            if merged.num_rows == 0 and month not in with_messages:
                self.counts["edge_partials_written"] += remove_file(path)
            elif stored is None or not merged.equals(stored):
                write_table(path, merged)
                self.counts["edge_partials_written"] += 1
        return True

    def _edges(self, due: bool) -> None:
        path = edges_path(self.store)
        months = existing_months(partials_dir(self.store))
        if not due and (path.exists() or not months):
            self.counts["edges"] = row_count(path)
            return
        files = [str(partials_path(self.store, m)) for m in sorted(months)]
        if files:
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW partials AS SELECT * FROM read_parquet([{listing}], "
                             "hive_partitioning = false)")
            fresh = self.con.sql(edges_sql("partials")).to_arrow_table()
        else:
            fresh = FORWARD_EDGES.empty_table().drop_columns(["computed_at"])
        self._merge(FORWARD_EDGES, path, fresh, None, ("source_key", "target_channel_id"), month_file=False)
        self.counts["edges"] = row_count(path)

    def _merge(self, spec: DatasetSpec, path: Path, fresh: pa.Table, scope: pa.Table | None,
               scope_cols: tuple[str, ...], *, month_file: bool = True) -> None:
        """Merge recomputed rows into one output file; write it only when its content changed."""
        con, c = self.con, self.counts
        stored = read_table(path, spec.schema)
        con.register("stored", stored if stored is not None else spec.empty_table())
        con.register("fresh", fresh)
        if scope is not None:
            con.register("scope", scope)
        merged = con.sql(merge_sql(spec.schema.names, spec.primary_key, scope=None if scope is None else
                                       scope_cols, stamp="computed_at"), params={"now": self.now}).to_arrow_table()
        merged = merged.cast(spec.schema)
        con.register("merged", merged)
        key = ", ".join(spec.primary_key)
        c["rows_changed"] += con.execute("SELECT count(*) FROM merged WHERE computed_at = $now",
                                         {"now": self.now}).fetchall()[0][0]
        c["rows_removed"] += self._scalar(f"SELECT count(*) FROM stored ANTI JOIN merged USING ({key})")
        if merged.num_rows == 0:
            if remove_file(path):
                c["months_removed" if month_file else "edges_written"] += 1
        elif stored is None or not merged.equals(stored):
            write_table(path, merged, spec)
            c["months_written" if month_file else "edges_written"] += 1


def run_aggregate(settings: Settings, *, full: bool = False, progress: ProgressCallback | None = None
                  ) -> AggregateResult:
    """Entry point shared by the CLI and the Airflow task."""
    return Aggregator(settings, full=full, progress=progress).run()


def main(argv: list[str] | None = None) -> int:
    """`python -m chanwatch.steps.aggregate [--storage ROOT] [--config FILE] [--full]`: one JSON line of counts."""
    from chanwatch.logs import setup_logging
    from chanwatch.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m chanwatch.steps.aggregate", description=__doc__.split("\n")[0])
    parser.add_argument("--storage", help="storage root (default: from the config)")
    parser.add_argument("--config", help="config file (default: chanwatch.toml)")
    parser.add_argument("--full", action="store_true", help="recompute every day, ignoring the stored state")
    args = parser.parse_args(argv)
    setup_logging()
    result = run_aggregate(load_settings(args.config, storage=args.storage), full=args.full)
    sys.stdout.write(orjson.dumps({"run_id": result.run_id, "counts": result.counts,
                                   "seconds": round(result.seconds, 3)}).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
