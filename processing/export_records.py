"""Turn batches of Telegram Desktop export messages (raw JSON text) into canonical rows.

The per-field work runs as one vectorised DuckDB query over an Arrow batch, because doing it in
Python per message costs several times the whole import budget on a slow core. The query reads
old exports (text as a string, no `date_unixtime`, no `text_entities`) and new ones (text as a
list of strings and `{type, text}` parts, `text_entities`, `reactions`, `edited_unixtime`,
`forwarded_from`, `media_type`, service messages). A message with a field of the wrong type gets
a reason in `error` and is left out of the rows, so one bad record never sinks an import.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

RAW_SCHEMA = "tdesktop-export"

INT = ("BIGINT", "UBIGINT")
STR = ("VARCHAR",)
# Top-level fields the export may carry, and the JSON types each may have.
FIELD_TYPES: dict[str, tuple[str, ...]] = {
    "id": INT, "type": STR, "date": STR, "date_unixtime": (*STR, *INT), "edited": STR,
    "edited_unixtime": (*STR, *INT), "text": ("VARCHAR", "ARRAY"), "text_entities": ("ARRAY",),
    "reactions": ("ARRAY",), "reply_to_message_id": INT, "forwarded_from": STR,
    "forwarded_from_id": STR, "author": STR, "action": STR, "photo": STR, "photo_file_size": INT,
    "file": STR, "file_name": STR, "file_size": INT, "thumbnail": STR, "media_type": STR,
    "mime_type": STR, "width": INT, "height": INT, "duration_seconds": (*INT, "DOUBLE"),
}
MEDIA_KIND_BY_TYPE = {
    "video_file": "video", "animation": "animation", "video_message": "video_message",
    "voice_message": "voice_message", "audio_file": "audio_file", "sticker": "sticker",
}
NON_FILE_MEDIA = {
    "poll": "poll", "location_information": "location", "contact_information": "contact",
    "game_title": "game", "invoice_information": "invoice",
}

_STRUCTURE = (
    '{"id":"UBIGINT","type":"VARCHAR","date":"VARCHAR","date_unixtime":"VARCHAR","edited":"VARCHAR",'
    '"edited_unixtime":"VARCHAR","text":"JSON",'
    '"text_entities":[{"type":"VARCHAR","text":"VARCHAR","href":"VARCHAR"}],'
    '"reactions":[{"type":"VARCHAR","count":"BIGINT","emoji":"VARCHAR","document_id":"VARCHAR"}],'
    '"reply_to_message_id":"BIGINT","forwarded_from":"VARCHAR","forwarded_from_id":"VARCHAR",'
    '"author":"VARCHAR","action":"VARCHAR","photo":"VARCHAR","file":"VARCHAR","media_type":"VARCHAR"'
    + "".join(f',"{key}":"JSON"' for key in NON_FILE_MEDIA) + "}"
)
_MEDIA_STRUCTURE = (
    '{"photo":"VARCHAR","photo_file_size":"BIGINT","file":"VARCHAR","file_name":"VARCHAR","file_size":"BIGINT",'
    '"thumbnail":"VARCHAR","mime_type":"VARCHAR","width":"BIGINT","height":"BIGINT","duration_seconds":"DOUBLE"}'
)


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join(_sql_str(v) for v in values) + "]"


_NAMES = {"BIGINT": "an integer", "UBIGINT": "an integer", "DOUBLE": "a number", "VARCHAR": "a string",
          "ARRAY": "a list", "OBJECT": "an object", "BOOLEAN": "true/false", "NULL": "null"}


def _describe(allowed: tuple[str, ...]) -> str:
    return " or ".join(dict.fromkeys(_NAMES[a] for a in allowed))


# One expression checks every field's JSON type (a CASE branch per field made planning cost more
# than running the query). `bad` is the 1-based index of the first field with a wrong type, or 0.
_PATHS = _sql_list([f"$.{key}" for key in FIELD_TYPES])
_ALLOWED = "[" + ", ".join(_sql_list([*allowed, "NULL"]) for allowed in FIELD_TYPES.values()) + "]"
_FIELD_NAMES = _sql_list(list(FIELD_TYPES))
_EXPECTED = _sql_list([_describe(allowed) for allowed in FIELD_TYPES.values()])
_TYPE_NAMES = "MAP {" + ", ".join(f"{_sql_str(k)}: {_sql_str(v)}" for k, v in _NAMES.items()) + "}"
_KIND_CASE = " ".join(f"WHEN {_sql_str(k)} THEN {_sql_str(v)}" for k, v in MEDIA_KIND_BY_TYPE.items())
_NON_FILE_CASE = " ".join(f"WHEN m.{k} IS NOT NULL THEN {_sql_str(v)}" for k, v in NON_FILE_MEDIA.items())
_ENTITY = '[{"type":"VARCHAR","text":"VARCHAR","href":"VARCHAR"}]'

NORMALISE_SQL = f"""
WITH typed AS (
    SELECT line, raw AS raw_json,
           json_type(raw, {_PATHS}) AS t,
           json_transform(raw, '{_STRUCTURE}') AS m
    FROM batch
), checked AS (
    SELECT *,
        list_position(list_transform(list_zip(t, {_ALLOWED}), lambda p: list_contains(p[2], coalesce(p[1], 'NULL'))),
                      false) AS bad
    FROM typed
), judged AS (
    SELECT *,
        CASE
            WHEN t[1] IS NULL OR t[1] = 'NULL' THEN 'field id is missing'
            WHEN bad > 0 THEN 'field ' || {_FIELD_NAMES}[bad] || ' must be ' || {_EXPECTED}[bad] || ', got '
                || coalesce({_TYPE_NAMES}[t[bad]], lower(t[bad]))
            WHEN m.id = 0 OR m.id > 9223372036854775807 THEN 'field id is out of range'
            WHEN m.date_unixtime IS NOT NULL AND TRY_CAST(m.date_unixtime AS BIGINT) IS NULL
                THEN 'field date_unixtime is not a number of seconds'
            WHEN m.date_unixtime IS NULL AND m.date IS NULL THEN 'field date is missing'
            WHEN m.date_unixtime IS NULL AND TRY_CAST(m.date AS TIMESTAMP) IS NULL
                THEN 'field date is not an ISO date'
            WHEN m.edited_unixtime IS NOT NULL AND TRY_CAST(m.edited_unixtime AS BIGINT) IS NULL
                THEN 'field edited_unixtime is not a number of seconds'
            WHEN m.edited_unixtime IS NULL AND m.edited IS NOT NULL
                 AND TRY_CAST(m.edited AS TIMESTAMP) IS NULL
                THEN 'field edited is not an ISO date'
        END AS error
    FROM checked
), derived AS (
    SELECT
        line, error, raw_json,
        CAST(m.id AS BIGINT) AS message_id,
        coalesce(to_timestamp(TRY_CAST(m.date_unixtime AS BIGINT)), TRY_CAST(m.date AS TIMESTAMP)::TIMESTAMPTZ)
            AS date,
        coalesce(to_timestamp(TRY_CAST(m.edited_unixtime AS BIGINT)),
                 TRY_CAST(m.edited AS TIMESTAMP)::TIMESTAMPTZ) AS edit_date,
        CASE
            WHEN m.text_entities IS NOT NULL
                THEN array_to_string(list_transform(m.text_entities, lambda e: coalesce(e.text, '')), '')
            WHEN json_type(m.text) = 'VARCHAR' THEN m.text ->> '$'
            WHEN json_type(m.text) = 'ARRAY' THEN array_to_string(list_transform(from_json(m.text, '["JSON"]'),
                lambda x: CASE json_type(x) WHEN 'VARCHAR' THEN x ->> '$' ELSE coalesce(x ->> '$.text', '') END),
                '')
            ELSE ''
        END AS text,
        list_transform(m.reactions, lambda r: {{
            'reaction': CASE r.type WHEN 'emoji' THEN r.emoji WHEN 'custom_emoji' THEN 'custom:' || r.document_id
                        ELSE r.type END,
            'count': r.count}}) AS reactions,
        CASE WHEN m.text_entities IS NOT NULL THEN m.text_entities
             WHEN json_type(m.text) = 'ARRAY'
                 THEN list_filter(from_json(m.text, '{_ENTITY}'), lambda e: e.type IS NOT NULL)
        END AS entities,
        m.reply_to_message_id AS reply_to_message_id,
        CASE WHEN m.forwarded_from_id LIKE 'channel%' THEN TRY_CAST(m.forwarded_from_id[8:] AS BIGINT) END
            AS fwd_from_channel_id,
        m.forwarded_from AS fwd_from_name,
        m.author AS post_author,
        CASE
            WHEN m.photo IS NOT NULL THEN 'photo'
            WHEN m.file IS NOT NULL THEN CASE m.media_type {_KIND_CASE} ELSE 'document' END
            {_NON_FILE_CASE}
        END AS media_kind,
        coalesce(m.type, 'message') AS message_type,
        CASE WHEN m.type = 'service' THEN m.action END AS service_action,
        m.photo IS NOT NULL OR m.file IS NOT NULL AS has_media
    FROM judged
)
SELECT
    line, error, has_media,
    CAST($channel_id AS BIGINT) AS channel_id,
    message_id, date, edit_date, text,
    NULL::BIGINT AS views, NULL::BIGINT AS forwards, NULL::BIGINT AS replies,
    reactions,
    NULL::BIGINT AS grouped_id,
    reply_to_message_id, fwd_from_channel_id, NULL::BIGINT AS fwd_from_message_id, fwd_from_name,
    post_author, media_kind,
    list_transform(list_filter(entities, lambda e: e.type IN ('link', 'url') OR
                   (e.type = 'text_link' AND e.href IS NOT NULL)),
                   lambda e: CASE WHEN e.type = 'text_link' THEN e.href ELSE e.text END) AS urls,
    list_transform(list_filter(entities, lambda e: e.type = 'hashtag'), lambda e: e.text) AS hashtags,
    list_transform(list_filter(entities, lambda e: e.type IN ('mention', 'mention_name')), lambda e: e.text)
        AS mentions,
    CASE WHEN $username IS NOT NULL THEN 'https://t.me/' || $username || '/' || message_id END AS url,
    message_type, service_action,
    false AS deleted,
    'export' AS source,
    raw_json,
    {_sql_str(RAW_SCHEMA)} AS raw_schema,
    make_timestamptz(CAST($collected_at AS BIGINT)) AS collected_at,
    CAST($run_id AS VARCHAR) AS run_id,
    strftime(date, '%Y-%m') AS month,
    message_id // $bucket_size AS bucket
FROM derived
ORDER BY line
"""

MEDIA_SQL = f"""
SELECT message_id, x.* FROM (SELECT message_id, json_transform(raw_json, '{_MEDIA_STRUCTURE}') AS x FROM media_input)
"""


class MalformedBatchError(ValueError):
    """A message in the batch is not valid JSON (the query needs every message to parse)."""


@dataclass(frozen=True)
class RunContext:
    """Per-run values stamped on every row."""

    channel_id: int
    username: str | None
    collected_at_micros: int
    run_id: str
    bucket_size: int


@dataclass(frozen=True)
class NormalisedBatch:
    """One batch: good message rows (with `month` and `bucket` for file routing), rejects, media."""

    messages: pa.Table
    rejects: list[dict[str, Any]]
    media: list[dict[str, Any]]


class ExportNormaliser:
    """Holds one DuckDB connection for the whole import; normalise a block or a list per call.

    Rejects carry `line`: for `normalise_list` the caller's line; for `normalise_block` the
    1-based position of the message within the block (see `block_lines`).
    """

    def __init__(self, threads: int = 2) -> None:
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute(f"SET threads = {int(threads)}")
        # The query streams; a low limit keeps DuckDB's caches from inflating the import's memory.
        self.con.execute("SET memory_limit = '96MB'")

    def close(self) -> None:
        self.con.close()

    def normalise_block(self, block: bytes, separator: bytes, ctx: RunContext) -> NormalisedBatch:
        """Messages of a pretty-printed export block: brace-less pieces joined by `separator`.

        `line` in rejects is the message's 1-based position in the block (see `block_lines`).
        """
        return self._normalise(block_messages(block, separator), None, ctx)

    def normalise_list(self, raw: list[bytes], lines: list[int | None], ctx: RunContext) -> NormalisedBatch:
        """Messages given one by one (the general reader), each with its line in the export."""
        return self._normalise(pa.array(raw, pa.binary()).cast(pa.string()), pa.array(lines, pa.int64()), ctx)

    def _normalise(self, raw: pa.Array, lines: pa.Array | None, ctx: RunContext) -> NormalisedBatch:
        if lines is None:
            lines = pa.array(range(1, len(raw) + 1), pa.int64())
        # Several record batches let DuckDB spread the JSON work over both cores.
        batch = pa.Table.from_batches(pa.table({"line": lines, "raw": raw}).to_batches(max_chunksize=1024))
        params = {"channel_id": ctx.channel_id, "username": ctx.username, "run_id": ctx.run_id,
                  "collected_at": ctx.collected_at_micros, "bucket_size": ctx.bucket_size}
        self.con.register("batch", batch)
        try:
            result = self.con.sql(NORMALISE_SQL, params=params).to_arrow_table()
        except duckdb.InvalidInputException as exc:
            raise MalformedBatchError(str(exc).splitlines()[0]) from None
        finally:
            self.con.unregister("batch")
        errors = result.column("error")
        rejects: list[dict[str, Any]] = []
        if errors.null_count < len(errors):
            rejects = result.filter(pc.is_valid(errors)).select(["line", "message_id", "error"]).to_pylist()
            result = result.filter(pc.is_null(errors))
        media = self._media(result.filter(result.column("has_media"))) if pc.any(result["has_media"]).as_py() \
            else []
        return NormalisedBatch(result.drop_columns(["error", "line", "has_media"]), rejects, media)

    def _media(self, rows: pa.Table) -> list[dict[str, Any]]:
        """Media fields of the (few) messages that carry a file, as dicts for the media step."""
        self.con.register("media_input", rows.select(["message_id", "raw_json"]))
        try:
            fields = self.con.sql(MEDIA_SQL).to_arrow_table().to_pylist()
        finally:
            self.con.unregister("media_input")
        context = rows.select(["message_id", "date", "media_kind", "month", "bucket"]).to_pylist()
        return [{**ctx_row, **field_row} for ctx_row, field_row in zip(context, fields, strict=True)]


def separator_positions(block: bytes, separator: bytes) -> np.ndarray:
    """Start offsets of every non-overlapping `separator` in `block`, found with numpy.

    A Python `find` loop costs a call per message; this checks candidate bytes in bulk instead.
    """
    data = np.frombuffer(block, dtype=np.uint8)
    width = len(separator)
    if len(data) < width:
        return np.empty(0, dtype=np.int64)
    pivot = separator.index(b"}") if b"}" in separator else 0
    candidates = np.flatnonzero(data[pivot:len(data) - width + pivot + 1] == separator[pivot])
    for k, byte in enumerate(separator):
        if k != pivot and len(candidates):
            candidates = candidates[data[candidates + k] == byte]
    if len(candidates) > 1 and np.any(np.diff(candidates) < width):  # overlapping matches: keep the first
        kept, last = [], -width
        for position in candidates.tolist():
            if position >= last + width:
                kept.append(position)
                last = position
        candidates = np.asarray(kept, dtype=np.int64)
    return candidates.astype(np.int64)


def block_messages(block: bytes, separator: bytes) -> pa.StringArray:
    """The messages of a block as an Arrow string array, each wrapped in its braces.

    Built from one `bytes.replace` and the separator positions, with no Python object per message:
    this is the difference between the import being bound by Python or by the JSON parser.
    """
    width = len(separator)
    positions = separator_positions(block, separator)
    bounds = np.concatenate(([-width], positions, [len(block)]))
    lengths = np.diff(bounds) - width + 2
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32 if len(block) < 2**31 - 4 else np.int64)
    data = b"{" + block.replace(separator, b"}{") + b"}"
    kind = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    array = pa.Array.from_buffers(kind, len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        raise UnicodeDecodeError("utf-8", block[:1], 0, 1, "the export is not valid UTF-8") from None
    return array


def first_malformed(block: bytes, separator: bytes) -> tuple[int, int, str]:
    """The first message in a block that is not valid JSON: its 1-based position, the line of the
    error counted from the message's opening brace, and the parser's message."""
    for position, piece in enumerate(block.split(separator), start=1):
        try:
            orjson.loads(b"{" + piece + b"}")
        except orjson.JSONDecodeError as exc:
            return position, exc.lineno, exc.msg
    return 1, 0, "invalid JSON"


def block_lines(block: bytes, separator: bytes, first_line: int, positions: list[int]) -> dict[int, int]:
    """Map 1-based message positions in a block to lines in the export (only for error messages)."""
    wanted = set(positions)
    lines: dict[int, int] = {}
    offset, index = 0, 1
    while wanted:
        if index in wanted:
            lines[index] = first_line + block.count(b"\n", 0, offset)
            wanted.discard(index)
        found = block.find(separator, offset)
        if found < 0:
            break
        offset, index = found + len(separator), index + 1
    return lines
