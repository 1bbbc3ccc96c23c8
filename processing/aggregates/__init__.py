"""Research aggregates: the SQL that turns messages, media and matches into daily counts and forward edges.

Pure text builders (DuckDB dialect): no connection, no file access. `chanwatch.steps.aggregate` runs them
over views it defines on the Parquet files, and `storage.aggregates` keeps the results and the state.
"""

from processing.aggregates.sql import (
    ALGORITHM_VERSION,
    DIGEST_COLUMNS,
    INPUT_COLUMNS,
    changed_pairs_sql,
    channel_daily_sql,
    digest_sql,
    edge_partials_sql,
    edges_sql,
    matches_daily_sql,
    merge_sql,
    source_sql,
)

__all__ = [
    "ALGORITHM_VERSION",
    "DIGEST_COLUMNS",
    "INPUT_COLUMNS",
    "changed_pairs_sql",
    "channel_daily_sql",
    "digest_sql",
    "edge_partials_sql",
    "edges_sql",
    "matches_daily_sql",
    "merge_sql",
    "source_sql",
]
