"""What `chanwatch match` reads and remembers: hashed media, and which list version each was checked against.

The ledger (one Parquet file per list under `_state/match/`) holds, for every media row checked,
its SHA-256 and the list version it was checked against. It is written only after the matches it
covers are committed, so a crash in between makes the next run check the same rows again, and the
deterministic `match_id` turns that into no change.
"""

from __future__ import annotations

import pyarrow as pa

from storage.files import write_parquet_atomic
from storage.objectstore import connect_duckdb, read_parquet
from storage.schemas import MEDIA, MESSAGES
from storage.store import Store

LEDGER_SCHEMA = pa.schema([("channel_id", pa.int64()), ("message_id", pa.int64()), ("media_index", pa.int32()),
                           ("sha256", pa.string()), ("list_version", pa.int32())])
MEDIA_COLUMNS = ("channel_id", "message_id", "media_index", "date", "media_kind", "md5", "sha256", "pdq",
                 "pdq_quality", "phash", "dhash", "frames")


def hashed_media(store: Store) -> pa.Table:
    """Every hashed media row with its hashes and the post's public link."""
    media = store.list_files(MEDIA)
    if not media:
        return pa.table({c: pa.array([], MEDIA.schema.field(c).type) for c in MEDIA_COLUMNS}
                        | {"message_url": pa.array([], pa.string())})
    messages = store.list_files(MESSAGES)
    con = connect_duckdb(store.root)
    try:
        con.execute("SET TimeZone = 'UTC'")
        columns = ", ".join(f"m.{c}" for c in MEDIA_COLUMNS)
        media_sql = "read_parquet($media, hive_partitioning = false, union_by_name = true)"
        if messages:
            sql = (f"SELECT {columns}, msg.url AS message_url FROM {media_sql} m LEFT JOIN "
                   "(SELECT channel_id, message_id, url FROM read_parquet($messages, hive_partitioning = false, "
                   "union_by_name = true)) msg USING (channel_id, message_id) ")
            params = {"media": [str(p) for p in media], "messages": [str(p) for p in messages]}
        else:
            sql = f"SELECT {columns}, NULL::VARCHAR AS message_url FROM {media_sql} m "
            params = {"media": [str(p) for p in media]}
        sql += "WHERE m.status = 'hashed' AND m.sha256 IS NOT NULL ORDER BY m.channel_id, m.message_id, m.media_index"
        return con.sql(sql, params=params).to_arrow_table()
    finally:
        con.close()


def ledger_path(store: Store, list_name: str):
    return store.state_path("match", f"ledger-{list_name}.parquet")


def read_ledger(store: Store, list_name: str) -> pa.Table:
    path = ledger_path(store, list_name)
    return read_parquet(path, schema=LEDGER_SCHEMA) if path.exists() else LEDGER_SCHEMA.empty_table()


def write_ledger(store: Store, list_name: str, table: pa.Table) -> None:
    write_parquet_atomic(ledger_path(store, list_name), table.select(LEDGER_SCHEMA.names).cast(LEDGER_SCHEMA))
