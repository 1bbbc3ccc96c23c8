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


@app.command()
def demo() -> None:
    """Build the demo channel and run the whole pipeline on it."""
    from chanwatch.steps.demo import build_demo, duckdb_examples, run_demo

    settings = _settings()
    export_json = build_demo()
    with byte_progress("demo import", export_json.stat().st_size) as progress:
        result = run_demo(settings, export_json, progress)
    c = result.counts
    out.print(f"[bold]demo export[/]: {export_json}")
    out.print(f"imported {c['messages_read']} messages ({c['messages_written']} rows new or changed); "
              f"media: {c['media_hashed']} hashed, {c['media_skipped']} skipped, {c['media_failed']} failed")
    root = settings.storage_root
    out.print(f"[bold]datasets[/] under {root}/: messages/, media/, channels/ (Hive-partitioned Parquet)")
    out.print("Try these with the duckdb CLI or `python -c 'import duckdb; duckdb.sql(...).show()'`:")
    for title, sql in duckdb_examples(root):
        out.print(f"\n-- {title}\n{sql}", highlight=False, markup=False, soft_wrap=True)


def main() -> None:
    """Typer handles usage errors (exit 2) and aborts (exit 1); chanwatch's own errors are mapped here."""
    try:
        app()
    except ChanwatchError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
