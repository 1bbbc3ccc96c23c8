"""The `chanwatch` command line. Exit codes: 0 success, 1 failed run, 2 bad usage or bad input.

Each command is a thin shell around a step function in `chanwatch.steps`, which Airflow tasks
call too, so there is one code path.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chanwatch.logs import setup_logging
from chanwatch.progress import byte_progress
from chanwatch.settings import Settings, load_settings
from processing.errors import ChanwatchError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Monitor allowlisted public Telegram channels for known material, by hash.")
out = Console()
err = Console(stderr=True)


class _Options:
    config: Path | None = None
    storage: str | None = None


@app.callback()
def _global(
    config: Annotated[Path | None, typer.Option("--config", help="Config file (default chanwatch.toml; "
                                                "env CHANWATCH_CONFIG).")] = None,
    storage: Annotated[str | None, typer.Option("--storage", help="Storage root (env "
                                                "CHANWATCH_STORAGE_ROOT).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs.")] = False,
) -> None:
    setup_logging(verbose)
    _Options.config, _Options.storage = config, storage


def _settings() -> Settings:
    return load_settings(_Options.config, _Options.storage)


@app.command("import-export")
def import_export_cmd(
    path: Annotated[Path, typer.Argument(help="A Telegram Desktop JSON export: its folder or result.json.")],
) -> None:
    """Ingest a Telegram Desktop export (a folder or a result.json)."""
    from chanwatch.steps.import_export import import_export, locate_export

    settings = _settings()
    _, json_file = locate_export(path)
    with byte_progress("importing", json_file.stat().st_size) as progress:
        result = import_export(settings, path, progress)
    c = result.counts
    out.print(f"imported {c['messages_read']} messages ({c['messages_written']} new or changed, "
              f"{c['messages_rejected']} rejected); media: {c['media_hashed']} hashed, "
              f"{c['media_skipped']} skipped, {c['media_failed']} failed; "
              f"{len(result.skipped_chats)} chats skipped")
    for reject in result.rejects[:10]:
        err.print(f"[yellow]skipped message[/] {reject['file']}:{reject['line']} "
                  f"id={reject['message_id']}: {reject['reason']}", highlight=False, markup=True)
    for chat in result.skipped_chats:
        err.print(f"skipped chat {chat['name']!r} ({chat['type']}): {chat['reason']}", highlight=False,
                  markup=False)


@app.command("hash")
def hash_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursively) to hash.")],
    workers: Annotated[int, typer.Option("--workers", "-j", min=0, help="Worker processes (0: one per "
                                         "core).")] = 0,
    full_decode: Annotated[bool, typer.Option("--full-decode", help="Decode JPEGs at full size (slower; for "
                                              "comparison with other tools).")] = False,
) -> None:
    """One JSON line per file: {path, media_kind, pdq, pdq_quality, phash, dhash, md5, sha256, frames, error}."""
    import dataclasses
    import os

    import orjson

    from chanwatch.progress import count_progress
    from chanwatch.steps.hash_files import expand_paths, hash_files

    settings = _settings()
    limits = settings.hashing
    if full_decode:
        limits = dataclasses.replace(limits, reduce_min_side=10**9)
    files = expand_paths(paths)
    stdout = sys.stdout.buffer
    with count_progress("hashing", len(files)) as progress:
        for line in hash_files(files, limits, settings.imports.max_media_bytes, workers or os.cpu_count() or 1,
                               progress):
            stdout.write(orjson.dumps(line) + b"\n")
    stdout.flush()


hashlist_app = typer.Typer(no_args_is_help=True, help="Import and manage hash lists (versioned banks).")
app.add_typer(hashlist_app, name="hashlist")


@hashlist_app.command("import")
def hashlist_import_cmd(
    file: Annotated[Path, typer.Argument(help="The list file.")],
    name: Annotated[str, typer.Option("--name", help="List name (letters, digits, . _ -).")],
    category: Annotated[str, typer.Option("--category", help="Category of the list's entries.")],
    fmt: Annotated[str, typer.Option("--format", help="auto, pytx, csv, md5 or vpdq.")] = "auto",
    signal: Annotated[str | None, typer.Option("--signal", help="Signal type of bare hashes (pdq, phash, "
                                               "dhash, md5, sha256).")] = None,
) -> None:
    """Import a hash list as a new version; it becomes active once written and indexed."""
    from chanwatch.steps.hashlists import import_hash_list

    result = import_hash_list(_settings(), file, name, category, fmt, signal)
    parsed = result.parsed
    counts = ", ".join(f"{s} {n:,}" for s, n in parsed.counts().items())
    ignored = ", ".join(f"{s} {n:,}" for s, n in sorted(parsed.ignored.items())) or "none"
    previous = f" (was v{result.previous_version})" if result.previous_version else ""
    out.print(f"{result.name} v{result.version} active{previous}: {parsed.entry_count:,} entries ({counts}); "
              f"{parsed.duplicates_folded:,} duplicates folded; ignored: {ignored}; format {parsed.format}; "
              f"{result.timings['total_s']:.2f} s", highlight=False)
    if not result.list_enabled:
        err.print(f"note: list {result.name} is disabled; `chanwatch hashlist enable {result.name}` to match it")


@hashlist_app.command("list")
def hashlist_list_cmd() -> None:
    """Every list's versions: counts per signal type, category and state."""
    from rich.table import Table

    from chanwatch.steps.hashlists import list_versions

    rows = list_versions(_settings())
    if not rows:
        out.print("no hash lists imported yet")
        return
    import orjson

    table = Table("list", "version", "state", "enabled", "category", "entries by signal", "format",
                  "imported (UTC)", "file", box=None)
    for r in rows:
        by_signal = ", ".join(f"{s} {n:,}" for s, n in orjson.loads(r["entries_by_signal"]).items())
        table.add_row(r["list_name"], str(r["list_version"]), r["state"], "yes" if r["list_enabled"] else "no",
                      r["category"], by_signal, r["format"], f"{r['imported_at']:%Y-%m-%d %H:%M}", r["source_file"])
    Console(width=max(out.width, 140)).print(table)


@hashlist_app.command("disable")
def hashlist_disable_cmd(name: Annotated[str, typer.Argument(help="List name.")]) -> None:
    """Stop matching a list (all its versions) until it is enabled again."""
    from chanwatch.steps.hashlists import set_list_enabled

    set_list_enabled(_settings(), name, False)
    out.print(f"{name}: disabled")


@hashlist_app.command("enable")
def hashlist_enable_cmd(name: Annotated[str, typer.Argument(help="List name.")]) -> None:
    """Match a disabled list again (its active version)."""
    from chanwatch.steps.hashlists import set_list_enabled

    set_list_enabled(_settings(), name, True)
    out.print(f"{name}: enabled")


@hashlist_app.command("rollback")
def hashlist_rollback_cmd(name: Annotated[str, typer.Argument(help="List name.")],
                          version: Annotated[int, typer.Argument(help="Version to make active.")]) -> None:
    """Make another version of a list the active one."""
    from chanwatch.steps.hashlists import rollback

    rollback(_settings(), name, version)
    out.print(f"{name}: v{version} active")


@app.command("match")
def match_cmd() -> None:
    """Match media not yet matched against the active list versions (and retro-hunt new entries)."""
    from chanwatch.steps.match import run_match

    result = run_match(_settings())
    c = result.counts
    out.print(f"match: {c['media_rows']:,} hashed media rows, {c['media_searched']:,} searched, "
              f"{c['pdq_low_quality']:,} PDQ below quality; {c['matches_found']:,} matches found, "
              f"{c['matches_new']:,} new; {result.seconds:.1f} s", highlight=False)
    for name, stats in sorted(result.per_list.items()):
        out.print(f"  {name} v{stats['version']}: {stats['searched_full']:,} searched in full, "
                  f"{stats['searched_delta']:,} against new entries only, {stats['found']:,} found", highlight=False)


@app.command("lookup")
def lookup_cmd(
    queries: Annotated[list[str], typer.Argument(help="SIGNAL:HEX (e.g. pdq:<64 hex>) or a media file path.")],
) -> None:
    """One JSON line per match: {query, list_name, list_version, entry_id, signal_type, distance, category}."""
    import orjson

    from chanwatch.steps.lookup import lookup

    stdout = sys.stdout.buffer
    for line in lookup(_settings(), queries):
        stdout.write(orjson.dumps(line) + b"\n")
    stdout.flush()


@app.command()
def login() -> None:
    """Interactive: log a Telegram account in and print its StringSession, once.

    Get an api_id and api_hash at https://my.telegram.org (API development tools). They are read
    from CHANWATCH_TELEGRAM_API_ID / CHANWATCH_TELEGRAM_API_HASH when set, else asked for. The
    session string is printed once and never written to a file: store it in the Airflow connection
    `telegram_default` (password field) or in CHANWATCH_TELEGRAM_SESSION.
    """
    import asyncio
    import os

    from telethon.sessions import StringSession

    from collectors.telegram import client as tg_client
    from collectors.telegram.credentials import ENV_API_HASH, ENV_API_ID, ENV_SESSION, TelegramCredentials

    settings = _settings()
    api_id = os.environ.get(ENV_API_ID) or typer.prompt("api_id (from my.telegram.org)")
    if not str(api_id).strip().isdigit():
        raise typer.BadParameter("api_id must be a number")
    api_hash = os.environ.get(ENV_API_HASH) or typer.prompt("api_hash", hide_input=True)
    client = tg_client.client_factory(TelegramCredentials(int(api_id), api_hash, StringSession().save()),
                                      settings.telegram)
    session = asyncio.run(tg_client.create_session(
        client, phone=lambda: typer.prompt("phone number (international format, e.g. +44...)"),
        code=lambda: typer.prompt("login code (sent by Telegram)"),
        password=lambda: typer.prompt("two-step verification password", hide_input=True, default="",
                                      show_default=False)))
    out.print("Logged in. Your session string (shown once; it grants access to the account, keep it secret):\n")
    print(session, flush=True)
    out.print(f"\nStore it in the Airflow connection `telegram_default` (password field) or export {ENV_SESSION}; "
              f"set {ENV_API_ID} and {ENV_API_HASH} too. Then run `chanwatch collect`.")


@app.command()
def collect(
    channel: Annotated[list[str] | None, typer.Option("--channel", help="Collect only this allowlisted channel "
                                                      "(repeatable).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="First run of a channel: collect from this date "
                                              "(YYYY-MM-DD, UTC); default \\[telegram] backfill_days.")] = None,
) -> None:
    """Collect the allowlisted public channels from Telegram (incremental; FloodWait-safe).

    First time: run `chanwatch login` once to create a session string, then set
    CHANWATCH_TELEGRAM_API_ID, CHANWATCH_TELEGRAM_API_HASH and CHANWATCH_TELEGRAM_SESSION (under
    Airflow: the `telegram_default` connection). With several `[telegram] accounts`, account NAME reads
    CHANWATCH_TELEGRAM_<NAME>_API_ID, _API_HASH and _SESSION, and each channel is read by its account
    (a banned or flood-waited account's channels go to the next one). Only allowlisted public broadcast
    channels are read; groups, private channels, users and bots are refused.
    Nothing is ever joined, sent or marked read.
    Exit 1 when a channel hit a FloodWait or a transient error (retry after the wait), else 0.
    """
    import datetime as dt

    from chanwatch.steps.collect import collect as run_collect
    from collectors.telegram import client as tg_client
    from collectors.telegram.credentials import credentials_from_env

    settings = _settings()
    start = None
    if since:
        try:
            start = dt.datetime.fromisoformat(since).replace(tzinfo=dt.UTC)
        except ValueError:
            raise typer.BadParameter(f"--since {since!r}: use YYYY-MM-DD") from None
    # Every account's credentials are checked before anything is read; a client is built when first needed.
    credentials = {name: credentials_from_env(account=name) for name in settings.telegram.accounts}
    several = len(credentials) > 1
    result = run_collect(settings, since=start, only=channel,
                         clients=lambda name: tg_client.client_factory(credentials[name], settings.telegram))
    for c in result.channels:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(c.counts.items())) or "nothing new"
        via = f" via {c.account}" if several and c.account else ""
        via += f" (after {', '.join(c.failed_over)} went out)" if c.failed_over else ""
        line = f"@{c.username}: {c.status}{via}" + (f" ({c.reason})" if c.reason else "") + f"; {counts}"
        (err if c.status != "ok" else out).print(line, highlight=False, markup=False)
    if result.retry_needed:
        waits = f"; retry after {max(result.flood_waits)} s" if result.flood_waits else ""
        err.print(f"collect: some channels need a retry{waits}", highlight=False)
        raise typer.Exit(1)


@app.command()
def recheck() -> None:
    """Re-check whether referred items are still online; record removals and due re-notices."""
    from chanwatch.steps.recheck import run_recheck

    result = run_recheck(_settings())
    c = result.counts
    out.print(f"recheck: {c['checked']} referred items checked: {c.get('online', 0)} online, "
              f"{c.get('deleted', 0)} deleted, {c.get('channel_gone', 0)} channel gone, {c.get('unknown', 0)} "
              f"could not be checked; {c['removed_new']} newly removed; {c['renotices']} re-notices due",
              highlight=False)
    if result.renotice_file:
        out.print(f"re-notice batch to send: {result.renotice_file}", highlight=False)
    if c.get("unknown", 0):
        raise typer.Exit(1)


@app.command()
def aggregate(
    full: Annotated[bool, typer.Option("--full", help="Recompute every day, not only days whose inputs changed.")]
    = False,
) -> None:
    """Build the research aggregates (channel_daily, forward_edges, matches_daily); apply the retention policy."""
    from chanwatch.steps.aggregate import run_aggregate
    from chanwatch.steps.retention import apply_data_protection

    settings = _settings()
    purged = apply_data_protection(settings)
    result = run_aggregate(settings, full=full)
    c = result.counts
    out.print(f"aggregate: {c.get('days_recomputed', 0)} days recomputed, {c.get('days_unchanged', 0)} unchanged, "
              f"{c.get('months_written', 0)} month files written, {c.get('edges', 0)} forward edges; "
              f"{result.seconds:.1f} s", highlight=False)
    if purged["rows_changed"] or purged["review_texts_purged"]:
        out.print(f"privacy: {purged['rows_text_purged']} messages' text purged, {purged['rows_names_changed']} "
                  f"with names dropped or pseudonymised, {purged['review_texts_purged']} review copies purged",
                  highlight=False)


@app.command()
def report(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.html and the CSVs.")] = Path("var/report"),
    since: Annotated[str | None, typer.Option(help="First day to include, YYYY-MM-DD (default: everything).")]
    = None,
) -> None:
    """Write the flagged-items report: one self-contained HTML file (opens offline) and CSVs."""
    import datetime as dt

    from chanwatch.steps.report import write_report

    try:
        first_day = dt.date.fromisoformat(since) if since else None
    except ValueError:
        raise typer.BadParameter(f"--since {since!r}: use YYYY-MM-DD") from None
    result = write_report(_settings(), out_dir, first_day)
    out.print(f"report: {result.html.resolve()} (+ {len(result.csvs)} CSVs in {out_dir}); "
              f"{result.summary.get('matches', 0)} matches, {result.summary.get('confirmed', 0)} confirmed, "
              f"{result.summary.get('referred', 0)} referred", highlight=False)


review_app = typer.Typer(no_args_is_help=True, help="The analysts' review app and its database.")
app.add_typer(review_app, name="review")


@review_app.command("serve")
def review_serve_cmd(
    host: Annotated[str, typer.Option(help="Address to bind; loopback by default (put TLS in front for more).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8700,
    sync: Annotated[bool, typer.Option(help="Copy new matches into the queue before serving.")] = True,
    workers: Annotated[int, typer.Option(help="Server processes.")] = 1,
) -> None:
    """Serve the review app (migrates the database; syncs matches first)."""
    import uvicorn

    from chanwatch.steps.review_db import open_review_db, review_url, sync_review
    from storage.reviewdb.engine import safe_url

    settings = _settings()
    engine = open_review_db(settings)
    if sync:
        counts = sync_review(settings, engine).counts
        out.print(f"review sync: {counts['matches_new']} new matches, {counts['items_new']} new items, "
                  f"{counts['reappearances']} reappearances", highlight=False)
    out.print(f"review database: {safe_url(review_url(settings))}", highlight=False)
    out.print(f"serving on http://{host}:{port}/ (Ctrl-C to stop)", highlight=False)
    if workers > 1:
        import os

        os.environ["CHANWATCH_REVIEW_APP_CONFIG"] = str(_Options.config or "")
        os.environ["CHANWATCH_REVIEW_APP_STORAGE"] = settings.storage_root
        uvicorn.run("chanwatch.review_asgi:app", host=host, port=port, workers=workers, proxy_headers=True,
                    log_level="warning")
        return
    from review.web import create_app

    uvicorn.run(create_app(engine, settings.review), host=host, port=port, proxy_headers=True, log_level="warning")


@review_app.command("add-user")
def review_add_user_cmd(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option("--role", help="analyst, lead or admin.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first "
                                                 "line of standard input (for scripts) instead of asking.")]
    = False,
) -> None:
    """Create an account; asks for the password twice (never an argument, never echoed)."""
    from chanwatch.steps.review_db import open_review_db
    from review.accounts import add_user
    from storage.reviewdb.engine import session_factory

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    settings = _settings()
    with session_factory(open_review_db(settings))() as session:
        add_user(session, name, role, password, settings.review)
        session.commit()
    out.print(f"user {name} added with role {role}", highlight=False)


@review_app.command("verify-audit")
def review_verify_audit_cmd() -> None:
    """Check the audit log's hash chain; exit 1 and name each broken entry if it was tampered with."""
    from chanwatch.steps.review_db import verify_audit

    checked, problems = verify_audit(_settings())
    if problems:
        for p in problems:
            err.print(f"audit entry {p.seq}: {p.problem}", highlight=False)
        err.print(f"audit log: {checked} entries checked, {len(problems)} problems: TAMPERED", highlight=False)
        raise typer.Exit(1)
    out.print(f"audit log: {checked} entries checked, chain intact", highlight=False)


@review_app.command("sync")
def review_sync_cmd() -> None:
    """Copy new matches from the `matches` dataset into the review queue (idempotent)."""
    from chanwatch.steps.review_db import sync_review

    counts = sync_review(_settings()).counts
    out.print(f"review sync: {counts['matches_seen']} matches seen, {counts['matches_new']} new, "
              f"{counts['items_new']} new items, {counts['reappearances']} reappearances", highlight=False)


@app.command()
def demo() -> None:
    """Build the demo channel and run the whole pipeline on it."""
    from chanwatch.steps.demo import DEMO_LIST, build_demo, demo_matches, duckdb_examples, import_demo_list, run_demo
    from chanwatch.steps.match import run_match

    settings = _settings()
    export_json = build_demo()
    with byte_progress("demo import", export_json.stat().st_size) as progress:
        result = run_demo(settings, export_json, progress)
    c = result.counts
    out.print(f"[bold]demo export[/]: {export_json}")
    out.print(f"imported {c['messages_read']} messages ({c['messages_written']} rows new or changed); "
              f"media: {c['media_hashed']} hashed, {c['media_skipped']} skipped, {c['media_failed']} failed")
    version = import_demo_list(settings, export_json)
    out.print(f"hash list {DEMO_LIST}: " + (f"imported v{version}" if version else "unchanged, already active"))
    matched = run_match(settings)
    out.print(f"match: {matched.counts['media_searched']} media searched, {matched.counts['matches_found']} "
              f"matches found ({matched.counts['matches_new']} new)")
    for m in demo_matches(settings):
        out.print(f"  {m['entry_id']:<24} {m['signal_type']:<4} distance {m['distance']:>2}  {m['message_url']}",
                  highlight=False)
    from chanwatch.steps.review_db import sync_review

    synced = sync_review(settings).counts
    out.print(f"review queue: {synced['items_new']} new items ({synced['matches_new']} matches) synced; look at them "
              "with `chanwatch review add-user NAME --role lead` then `chanwatch review serve`", highlight=False)
    root = settings.storage_root
    out.print(f"[bold]datasets[/] under {root}/: messages/, media/, channels/, hashlists/, matches/ "
              "(Hive-partitioned Parquet)")
    out.print("Try these with the duckdb CLI or `python -c 'import duckdb; duckdb.sql(...).show()'`:")
    for title, sql in duckdb_examples(root):
        out.print(f"\n-- {title}\n{sql}", highlight=False, markup=False, soft_wrap=True)
    from chanwatch.steps.report import write_report

    report = write_report(settings)
    out.print(f"\n[bold]report[/]: {report.html.resolve()} (open it in a browser; CSVs beside it)", highlight=False)


def main() -> None:
    """Typer handles usage errors (exit 2) and aborts (exit 1); chanwatch's own errors are mapped here."""
    try:
        app()
    except ChanwatchError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
