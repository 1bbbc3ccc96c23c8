"""The `demo` step: build the bundled fictional channel's export and run the pipeline on it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from chanwatch.demo_data import DEMO_CHANNEL_ID, build_demo_export
from chanwatch.settings import DEMO_ALLOWLIST_ENTRY, AllowlistEntry, Settings
from chanwatch.steps.import_export import ImportResult, ProgressCallback, import_export

DEMO_DIR = Path("var/demo")


def demo_settings(settings: Settings) -> Settings:
    """The operator's settings, with the demo channel on the allowlist if it is not already."""
    if settings.channel_by_id(DEMO_CHANNEL_ID):
        return settings
    entry = AllowlistEntry(**DEMO_ALLOWLIST_ENTRY)
    return dataclasses.replace(settings, allowlist=(*settings.allowlist, entry))


def duckdb_examples(storage_root: str) -> list[tuple[str, str]]:
    """Three queries a newcomer can paste into `duckdb` to look at what the demo wrote."""
    root = storage_root.rstrip("/")
    return [
        ("Messages per day",
         f"SELECT date_trunc('day', date) AS day, count(*) AS messages FROM "
         f"read_parquet('{root}/messages/**/*.parquet', hive_partitioning=true) GROUP BY 1 ORDER BY 1;"),
        ("Media by kind and status",
         f"SELECT media_kind, status, count(*) AS n FROM "
         f"read_parquet('{root}/media/**/*.parquet', hive_partitioning=true) GROUP BY ALL ORDER BY n DESC;"),
        ("Files posted more than once (same SHA-256)",
         f"SELECT sha256, count(*) AS posts, list(message_id ORDER BY message_id) AS messages FROM "
         f"read_parquet('{root}/media/**/*.parquet', hive_partitioning=true) WHERE sha256 IS NOT NULL "
         f"GROUP BY sha256 HAVING count(*) > 1 ORDER BY posts DESC;"),
    ]


def build_demo(demo_dir: Path = DEMO_DIR) -> Path:
    """Generate the demo channel's export (deterministic; unchanged files are not rewritten)."""
    return build_demo_export(demo_dir / "export")


def run_demo(settings: Settings, export_json: Path, progress: ProgressCallback | None = None) -> ImportResult:
    """Run the pipeline, as it stands, on the demo export."""
    return import_export(demo_settings(settings), export_json, progress)
