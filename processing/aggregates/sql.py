"""SQL builders for the research aggregates (DuckDB dialect). Pure: they return text, and touch nothing.

The caller defines three views over the input Parquet files with `source_sql`: `msg` (messages), `med`
(media) and `mat` (matches), each with the columns of `INPUT_COLUMNS` plus `day` (the UTC day of `date`)
and `path` (the file the row came from, relative to the storage root). Rows without a date, and service
messages, are not in the views: no aggregate counts them.

Incremental builds rest on digests. `digest_sql` gives, per input file, channel and day, the number of
rows and an order-independent digest (the sum, modulo 2^64, of a hash of every column an aggregate
reads). A channel-day's inputs changed exactly when the digest summed over its files changed
(`changed_pairs_sql`), so only those channel-days are recomputed. Columns no aggregate reads (text,
raw JSON, hashes, `collected_at`, ...) are outside the digest: changing them recomputes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

# Bump when any aggregate's definition changes: the next run then rebuilds everything (a full run).
ALGORITHM_VERSION = 1

REACTIONS_TYPE = 'STRUCT("reaction" VARCHAR, "count" BIGINT)[]'

# What the aggregates read from each input dataset, with the type the views cast it to.
INPUT_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "messages": (("channel_id", "BIGINT"), ("message_id", "BIGINT"), ("date", "TIMESTAMPTZ"),
                 ("message_type", "VARCHAR"), ("deleted", "BOOLEAN"), ("views", "BIGINT"), ("forwards", "BIGINT"),
                 ("replies", "BIGINT"), ("reactions", REACTIONS_TYPE), ("fwd_from_channel_id", "BIGINT"),
                 ("fwd_from_name", "VARCHAR"), ("media_kind", "VARCHAR")),
    "media": (("channel_id", "BIGINT"), ("message_id", "BIGINT"), ("media_index", "INTEGER"),
              ("date", "TIMESTAMPTZ"), ("status", "VARCHAR")),
    "matches": (("match_id", "VARCHAR"), ("channel_id", "BIGINT"), ("message_id", "BIGINT"),
                ("media_index", "INTEGER"), ("date", "TIMESTAMPTZ"), ("list_name", "VARCHAR"),
                ("category", "VARCHAR"), ("signal_type", "VARCHAR")),
}
# Every column an aggregate reads is in the digest, so a change to any of them recomputes the day.
DIGEST_COLUMNS: dict[str, tuple[str, ...]] = {name: tuple(c for c, _ in cols) for name, cols in INPUT_COLUMNS.items()}
ROW_FILTER = {
    "messages": "date IS NOT NULL AND coalesce(message_type, 'message') <> 'service'",
    "media": "date IS NOT NULL",
    "matches": "date IS NOT NULL",
}
TWO_64 = "18446744073709551616"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def source_sql(dataset: str, files: Sequence[str], root_prefix: str) -> str:
    """A SELECT over some of an input dataset's files (absolute paths): typed columns, `day` and `path`.

    With no files it is an empty relation of the same shape, so the aggregate SQL needs no special case.
    """
    columns = INPUT_COLUMNS[dataset]
    if not files:
        typed = ", ".join(f"NULL::{t} AS {_quoted(c)}" for c, t in columns)
        return f"SELECT {typed}, NULL::DATE AS day, NULL::VARCHAR AS path WHERE false"
    typed = ", ".join(f"CAST({_quoted(c)} AS {t}) AS {_quoted(c)}" for c, t in columns)
    listing = ", ".join(_literal(f) for f in files)
    return (f"SELECT {typed}, CAST(date AS DATE) AS day, substr(filename, {len(root_prefix) + 1}) AS path "
            f"FROM read_parquet([{listing}], union_by_name = true, filename = true, hive_partitioning = false) "
            f"WHERE {ROW_FILTER[dataset]}")


def digest_sql(dataset: str, view: str) -> str:
    """Per (file, channel, day) of `view`: rows and the digest of the columns the aggregates read."""
    hashed = ", ".join(_quoted(c) for c in DIGEST_COLUMNS[dataset])
    return (f"SELECT {_literal(dataset)} AS dataset, path, channel_id, day, count(*)::BIGINT AS rows, "
            f"(sum(hash({hashed})::HUGEINT) % {TWO_64})::UBIGINT AS digest "
            f"FROM {view} GROUP BY path, channel_id, day")


def changed_pairs_sql(old: str, new: str) -> str:
    """(dataset, channel_id, day) whose summed digest or row count differs between two state relations."""
    def combined(rel: str) -> str:
        return (f"SELECT dataset, channel_id, day, sum(rows) AS r, (sum(digest::HUGEINT) % {TWO_64})::UBIGINT AS d "
                f"FROM {rel} WHERE channel_id IS NOT NULL AND day IS NOT NULL GROUP BY ALL")
    return (f"SELECT dataset, channel_id, day FROM ({combined(old)}) o FULL JOIN ({combined(new)}) n "
            "USING (dataset, channel_id, day) WHERE o.r IS DISTINCT FROM n.r OR o.d IS DISTINCT FROM n.d")


def _scoped(view: str, pairs: str | None) -> str:
    """`view` aliased `v`, limited to the channel-days listed in the relation `pairs` (None: all rows)."""
    if pairs is None:
        return f"{view} v"
    return f"{view} v SEMI JOIN {pairs} p ON p.channel_id = v.channel_id AND p.day = v.day"


def channel_daily_sql(msg: str = "msg", med: str = "med", mat: str = "mat", pairs: str | None = None) -> str:
    """`aggregates/channel_daily` rows (without `computed_at`) for the channel-days in `pairs` (None: all)."""
    return f"""
WITH m AS (
    SELECT channel_id, day,
        count(*) AS messages,
        count(*) FILTER (WHERE deleted) AS messages_deleted,
        count(*) FILTER (WHERE fwd_from_channel_id IS NOT NULL OR fwd_from_name IS NOT NULL) AS forwarded_messages,
        sum(views)::BIGINT AS views,
        sum(forwards)::BIGINT AS forwards,
        sum(replies)::BIGINT AS replies,
        sum(coalesce(list_sum(list_transform(reactions, lambda r: r."count")), 0))::BIGINT AS reactions
    FROM {_scoped(msg, pairs)} GROUP BY channel_id, day),
d AS (
    SELECT channel_id, day, count(*) AS media, count(*) FILTER (WHERE status = 'hashed') AS media_hashed
    FROM {_scoped(med, pairs)} GROUP BY channel_id, day),
x AS (
    SELECT channel_id, day, count(*) AS matches, count(DISTINCT (message_id, media_index)) AS matched_media
    FROM {_scoped(mat, pairs)} GROUP BY channel_id, day)
SELECT channel_id, day,
    coalesce(m.messages, 0) AS messages, coalesce(m.messages_deleted, 0) AS messages_deleted,
    coalesce(m.forwarded_messages, 0) AS forwarded_messages, m.views, m.forwards, m.replies,
    coalesce(m.reactions, 0) AS reactions,
    coalesce(d.media, 0) AS media, coalesce(d.media_hashed, 0) AS media_hashed,
    coalesce(x.matches, 0) AS matches, coalesce(x.matched_media, 0) AS matched_media
FROM m FULL JOIN d USING (channel_id, day) FULL JOIN x USING (channel_id, day)
"""


def edge_partials_sql(msg: str = "msg", mat: str = "mat", pairs: str | None = None) -> str:
    """Forward counts per (target channel, day, source) for the channel-days in `pairs` (None: all).

    `source_name` is the name on the day's latest named forward (by date, then message id), and `name_at`
    its date, so that the whole edge can take the latest name across days.
    """
    return f"""
WITH f AS (
    SELECT channel_id AS target_channel_id, day, message_id, date, media_kind, fwd_from_channel_id, fwd_from_name,
        CASE WHEN fwd_from_channel_id IS NOT NULL THEN 'id:' || fwd_from_channel_id
             ELSE 'name:' || fwd_from_name END AS source_key
    FROM {_scoped(msg, pairs)}
    WHERE fwd_from_channel_id IS NOT NULL OR fwd_from_name IS NOT NULL),
hit AS (
    SELECT DISTINCT channel_id AS target_channel_id, message_id FROM {_scoped(mat, pairs)})
SELECT target_channel_id, day, source_key,
    any_value(fwd_from_channel_id) AS source_channel_id,
    arg_max(fwd_from_name, (date, message_id)) FILTER (WHERE fwd_from_name IS NOT NULL) AS source_name,
    max(date) FILTER (WHERE fwd_from_name IS NOT NULL) AS name_at,
    count(*) AS forwards,
    count(*) FILTER (WHERE media_kind IS NOT NULL) AS forwards_with_media,
    count(hit.message_id) AS forwards_matched,
    min(date) AS first_date,
    max(date) AS last_date
FROM f LEFT JOIN hit USING (target_channel_id, message_id)
GROUP BY target_channel_id, day, source_key
"""


def edges_sql(partials: str) -> str:
    """`aggregates/forward_edges` rows (without `computed_at`) from the per-day partial counts."""
    return f"""
SELECT source_key, any_value(source_channel_id) AS source_channel_id, arg_max(source_name, name_at) AS source_name,
    target_channel_id, sum(forwards)::BIGINT AS forwards, sum(forwards_with_media)::BIGINT AS forwards_with_media,
    sum(forwards_matched)::BIGINT AS forwards_matched, min(first_date) AS first_date, max(last_date) AS last_date
FROM {partials}
GROUP BY source_key, target_channel_id
"""


def matches_daily_sql(mat: str = "mat", days: str | None = None) -> str:
    """`aggregates/matches_daily` rows (without `computed_at`) for the days in `days` (None: all)."""
    scope = "" if days is None else f" SEMI JOIN {days} d ON d.day = v.day"
    return f"""
SELECT day, coalesce(list_name, '') AS list_name, coalesce(category, '') AS category,
    coalesce(signal_type, '') AS signal_type,
    count(*) AS matches,
    count(DISTINCT (channel_id, message_id, media_index)) AS media,
    count(DISTINCT channel_id) AS channels
FROM {mat} v{scope}
GROUP BY ALL
"""


def merge_sql(columns: Sequence[str], key: Sequence[str], *, scope: Sequence[str] | None,
              stamp: str | None = None) -> str:
    """Merge `fresh` rows into `stored` rows of one output file.

    Stored rows whose `scope` columns are in the relation `scope` were recomputed and give way to `fresh`;
    the others are kept (scope None: nothing is kept, the file is rebuilt). A fresh row equal to its
    stored row in every column but `stamp` keeps the stored `stamp`: a recomputation that finds the same
    values changes no byte. `$now` fills `stamp` for new and changed rows. Ordered by `key`.
    """
    values = [c for c in columns if c not in key and c != stamp]
    fresh = ", ".join(f"f.{_quoted(c)}" for c in columns if c != stamp)
    if stamp:
        same = " AND ".join([f"s.{_quoted(key[0])} IS NOT NULL"]
                            + [f"f.{_quoted(c)} IS NOT DISTINCT FROM s.{_quoted(c)}" for c in values])
        on = " AND ".join(f"f.{_quoted(c)} = s.{_quoted(c)}" for c in key)
        carried = (f"SELECT {fresh}, CASE WHEN {same} THEN s.{_quoted(stamp)} ELSE $now END AS {_quoted(stamp)} "
                   f"FROM fresh f LEFT JOIN stored s ON {on}")
    else:
        carried = f"SELECT {fresh} FROM fresh f"
    listing = ", ".join(_quoted(c) for c in columns)
    parts = [f"SELECT {listing} FROM ({carried})"]
    if scope is not None:
        parts.append(f"SELECT {listing} FROM stored ANTI JOIN scope USING ({', '.join(_quoted(c) for c in scope)})")
    order = ", ".join(_quoted(c) for c in key)
    return " UNION ALL ".join(parts) + f" ORDER BY {order}"
