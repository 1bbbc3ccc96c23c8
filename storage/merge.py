"""Merge new rows into a stored file by primary key, so that a retry rewrites instead of appending.

Rules: the newest version of a row wins; a new row identical to the stored one in every
non-volatile column keeps the stored row (so a re-run changes no row, not even `collected_at`).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from storage.schemas import DatasetSpec


def is_sorted_unique(spec: DatasetSpec, table: pa.Table) -> bool:
    """True when the key's leading columns are constant and its last column strictly increases.

    This is the usual shape of a file's rows (one channel, ids in order), and it lets a write skip
    the dedupe and the sort.
    """
    if table.num_rows < 2:
        return True
    *leading, last = spec.primary_key
    for name in leading:
        column = table[name]
        if column.null_count or pc.count_distinct(column).as_py() != 1:
            return False
    values = table[last].to_numpy(zero_copy_only=False)
    return bool((values[1:] > values[:-1]).all())


def dedupe_last(spec: DatasetSpec, table: pa.Table) -> pa.Table:
    """Keep the last occurrence of each primary key (an input may list a record twice)."""
    if is_sorted_unique(spec, table):
        return table
    indexed = table.append_column("__i", pa.array(range(table.num_rows), pa.int64()))
    last = indexed.group_by(list(spec.primary_key), use_threads=False).aggregate([("__i", "max")])
    if last.num_rows == table.num_rows:
        return table
    keep = last["__i_max"]
    return table.take(keep.take(pc.sort_indices(keep)))  # the kept rows, in input order


def sort_by_key(spec: DatasetSpec, table: pa.Table) -> pa.Table:
    if is_sorted_unique(spec, table):
        return table
    return table.sort_by([(k, "ascending") for k in spec.primary_key])


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def merge_rows(spec: DatasetSpec, stored: pa.Table | None, new: pa.Table) -> tuple[pa.Table | None, int]:
    """Return (merged table, number of new or changed rows); the table is None when nothing changed.

    Rows are compared by a hash of their non-volatile columns, so the join holds keys and hashes,
    not whole rows (raw JSON included), and memory stays near the size of the data.
    """
    new = dedupe_last(spec, new.cast(spec.schema))
    if stored is None or stored.num_rows == 0:
        return (sort_by_key(spec, new), new.num_rows) if new.num_rows else (None, 0)
    stored = stored.cast(spec.schema)
    keys = ", ".join(_quoted(c) for c in spec.primary_key)
    content = ", ".join(_quoted(c) for c in spec.schema.names if c not in spec.volatile)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET threads = 1")
        con.register("stored_rows", stored)
        con.register("new_rows", new)
        con.execute(f"CREATE TEMP TABLE stored_keys AS SELECT {keys}, hash({content}) AS h FROM stored_rows")
        con.execute(f"CREATE TEMP TABLE new_keys AS SELECT {keys}, hash({content}) AS h, row_number() OVER () - 1 "
                    "AS i FROM new_rows")
        changed_index = con.sql(f"SELECT i FROM new_keys ANTI JOIN stored_keys USING ({keys}, h) ORDER BY i"
                                ).to_arrow_table()["i"]
        if len(changed_index) == 0:
            return None, 0
        changed = new.take(changed_index)
        con.register("changed_keys", changed.select(list(spec.primary_key)))
        kept_index = con.sql("SELECT i FROM (SELECT *, row_number() OVER () - 1 AS i FROM stored_keys) "
                             f"ANTI JOIN changed_keys USING ({keys}) ORDER BY i").to_arrow_table()["i"]
    finally:
        con.close()
    merged = pa.concat_tables([stored.take(kept_index), changed])
    return sort_by_key(spec, merged), changed.num_rows
