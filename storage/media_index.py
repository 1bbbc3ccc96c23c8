"""What is already hashed for a channel, so that a re-run does not decode the same file again."""

from __future__ import annotations

from typing import Any

from storage.objectstore import connect_duckdb
from storage.schemas import MEDIA
from storage.store import Store

REUSED_COLUMNS = ("pdq", "pdq_quality", "phash", "dhash", "frames", "frame_count", "duration_s", "status",
                  "status_reason")


def known_media(store: Store, channel_id: int) -> dict[tuple[int, int], dict[str, Any]]:
    """(message_id, media_index) -> stored hashes, for media whose bytes were hashed before."""
    files = list((store.root / MEDIA.name).glob(f"month=*/c{channel_id}-b*.parquet"))
    if not files:
        return {}
    con = connect_duckdb(store.root)
    try:
        con.execute("SET threads = 1")
        rows = con.sql(
            "SELECT message_id, media_index, hashed_variant, sha256, md5, hashed_bytes, source_file_id, "
            + ", ".join(REUSED_COLUMNS)
            + " FROM read_parquet($files, union_by_name = true) WHERE sha256 IS NOT NULL AND status = 'hashed'",
            params={"files": [str(f) for f in files]}).to_arrow_table().to_pylist()
    finally:
        con.close()
    return {(row["message_id"], row["media_index"]): row for row in rows}
