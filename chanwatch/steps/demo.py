"""The `demo` step: build the bundled fictional channel's export and run the pipeline on it."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from chanwatch.demo_data import DEMO_CHANNEL_ID, DEMO_HASHLIST_NAME, build_demo_export
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
        ("Re-posted images: pairs of photos within PDQ distance 31 (re-encoded, resized, cropped, watermarked)",
         f"WITH m AS (SELECT message_id, pdq FROM read_parquet('{root}/media/**/*.parquet', hive_partitioning=true) "
         "WHERE pdq_quality >= 50) SELECT a.message_id AS first_post, b.message_id AS repost, "
         "list_sum(list_transform(range(4), lambda i: bit_count(xor(('0x' || a.pdq[i*16+1:i*16+16])::UBIGINT, "
         "('0x' || b.pdq[i*16+1:i*16+16])::UBIGINT))::INT)) AS pdq_distance "
         "FROM m a JOIN m b ON a.message_id < b.message_id WHERE pdq_distance <= 31 ORDER BY ALL;"),
    ]


def build_demo(demo_dir: Path = DEMO_DIR) -> Path:
    """Generate the demo channel's export (deterministic; unchanged files are not rewritten)."""
    return build_demo_export(demo_dir / "export")


def run_demo(settings: Settings, export_json: Path, progress: ProgressCallback | None = None) -> ImportResult:
    """Import the demo export (collection stands in for the live collector here)."""
    return import_export(demo_settings(settings), export_json, progress)


DEMO_LIST = "demo-known"


def import_demo_list(settings: Settings, export_json: Path) -> int | None:
    """Import the demo's hash list, unless that exact file is already the active version; returns the new version."""
    from chanwatch.steps.hashlists import import_hash_list, list_versions

    path = export_json.parent.parent / DEMO_HASHLIST_NAME
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    active = [r for r in list_versions(settings) if r["list_name"] == DEMO_LIST and r["state"] == "active"]
    if active and active[0]["source_sha256"] == digest:
        return None
    return import_hash_list(settings, path, DEMO_LIST, "demo-known-material").version


def demo_matches(settings: Settings) -> list[dict]:
    """The demo's matches, for display: post link, signal, distance, entry."""
    from storage.schemas import MATCHES
    from storage.store import Store

    table = Store(settings.storage_root).read(MATCHES)
    rows = table.select(["message_url", "media_kind", "signal_type", "distance", "entry_id", "list_name"]).to_pylist()
    return sorted(rows, key=lambda r: (r["entry_id"], r["distance"], r["message_url"] or ""))
