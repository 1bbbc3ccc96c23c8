"""The one place where every dataset's schema lives, with its version.

`docs/datasets.md` is generated from this module (`python -m storage.docgen`), and a test fails
when the committed file is stale. Bump a dataset's `version` whenever its columns change.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

UTC_TS = pa.timestamp("us", tz="UTC")


def _f(name: str, type_: pa.DataType, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's contract: schema, version, identity and layout."""

    name: str
    version: int
    schema: pa.Schema
    primary_key: tuple[str, ...]
    # Columns that record *when/by whom* a row was written. A re-run whose rows differ only in
    # these columns changes nothing on disk: the stored row is kept as it was.
    volatile: tuple[str, ...]
    layout: str
    about: str

    def empty_table(self) -> pa.Table:
        return self.schema.empty_table()


REACTION = pa.struct([pa.field("reaction", pa.string()), pa.field("count", pa.int64())])
FRAME = pa.struct([pa.field("ts", pa.float64()), pa.field("pdq", pa.string()), pa.field("quality", pa.int32())])

MESSAGES = DatasetSpec(
    name="messages",
    version=1,
    about="One row per channel message (latest known values). Service messages are kept with "
    "`message_type = 'service'`.",
    layout="`messages/month=YYYY-MM/c<channel_id>-b<bucket>.parquet`: Hive partition `month` is the "
    "message's UTC month; one file per channel and block of 50,000 message ids.",
    primary_key=("channel_id", "message_id"),
    volatile=("collected_at", "run_id"),
    schema=pa.schema(
        [
            _f("channel_id", pa.int64(), "Telegram channel id (without the -100 prefix).", False),
            _f("message_id", pa.int64(), "Message id, unique within the channel.", False),
            _f("date", UTC_TS, "When the message was posted (UTC). Old exports without "
               "`date_unixtime` carry the exporter's local time; it is stored as if UTC."),
            _f("edit_date", UTC_TS, "When the message was last edited (UTC), if ever."),
            _f("text", pa.string(), "Message text or media caption, entities flattened to plain text."),
            _f("views", pa.int64(), "View counter (live collection only; exports do not carry it)."),
            _f("forwards", pa.int64(), "Forward counter (live collection only)."),
            _f("replies", pa.int64(), "Number of replies in the linked discussion (live collection only)."),
            _f("reactions", pa.list_(REACTION), "Reactions: emoji (or `custom:<document_id>`, `paid`) "
               "and count."),
            _f("grouped_id", pa.int64(), "Album id shared by the messages of one album (live collection; "
               "Telegram Desktop exports do not carry it)."),
            _f("reply_to_message_id", pa.int64(), "Message this one replies to, in the same channel."),
            _f("fwd_from_channel_id", pa.int64(), "Channel the message was forwarded from, when known."),
            _f("fwd_from_message_id", pa.int64(), "Message id in the source channel, when known."),
            _f("fwd_from_name", pa.string(), "Display name of the forward source."),
            _f("post_author", pa.string(), "Author signature on the post, if the channel signs posts."),
            _f("media_kind", pa.string(), "photo, video, animation, video_message, voice_message, "
               "audio_file, sticker, document, or null for text-only."),
            _f("urls", pa.list_(pa.string()), "URLs in the text: plain links and text-link targets."),
            _f("hashtags", pa.list_(pa.string()), "Hashtags in the text, with the leading `#`."),
            _f("mentions", pa.list_(pa.string()), "@mentions in the text."),
            _f("url", pa.string(), "Public link to the post: https://t.me/<username>/<message_id>."),
            _f("message_type", pa.string(), "`message` or `service` (channel created, title changed, ...)."),
            _f("service_action", pa.string(), "For service messages: the action, e.g. `edit_group_title`."),
            _f("deleted", pa.bool_(), "True when the message vanished from the channel after collection."),
            _f("source", pa.string(), "`export` (Telegram Desktop export) or `telegram` (live API)."),
            _f("raw_json", pa.string(), "The raw record as received, JSON, so columns can be re-derived."),
            _f("raw_schema", pa.string(), "What `raw_json` follows: `tdesktop-export` or `telegram-layer-<N>`."),
            _f("collected_at", UTC_TS, "When chanwatch first stored this version of the row."),
            _f("run_id", pa.string(), "The run that stored this version of the row."),
        ]
    ),
)

MEDIA = DatasetSpec(
    name="media",
    version=3,
    about="One row per media item of a message, with its hashes. No media bytes are ever stored.",
    layout="`media/month=YYYY-MM/c<channel_id>-b<bucket>.parquet`, aligned with `messages`.",
    primary_key=("channel_id", "message_id", "media_index"),
    volatile=("hashed_at", "run_id"),
    schema=pa.schema(
        [
            _f("channel_id", pa.int64(), "Telegram channel id.", False),
            _f("message_id", pa.int64(), "Message the media belongs to.", False),
            _f("media_index", pa.int32(), "Position of the media within the message (0 first).", False),
            _f("date", UTC_TS, "Date of the message (UTC); places the row in its month partition."),
            _f("media_kind", pa.string(), "photo, video, animation, video_message, voice_message, "
               "audio_file, sticker or document."),
            _f("mime_type", pa.string(), "MIME type, as reported by the source."),
            _f("file_name", pa.string(), "Original file name, when the source reports one."),
            _f("file_size", pa.int64(), "Size in bytes, as reported by the source."),
            _f("width", pa.int32(), "Width in pixels, as reported by the source."),
            _f("height", pa.int32(), "Height in pixels, as reported by the source."),
            _f("duration_s", pa.float64(), "Duration in seconds (video, audio)."),
            _f("source_file_id", pa.int64(), "Telegram's photo or document id (live collection): a re-read "
               "message whose file id is unchanged is not downloaded again."),
            _f("hashed_variant", pa.string(), "What was hashed: `full` (the file), a Telegram size "
               "such as `x` or `y`, or `thumbnail`."),
            _f("hashed_bytes", pa.int64(), "Number of bytes that were hashed."),
            _f("md5", pa.string(), "MD5 of the hashed bytes, lowercase hex."),
            _f("sha256", pa.string(), "SHA-256 of the hashed bytes, lowercase hex."),
            _f("pdq", pa.string(), "PDQ hash, 64 hex digits (images)."),
            _f("pdq_quality", pa.int32(), "PDQ quality, 0 to 100; below 50 is not matched."),
            _f("phash", pa.string(), "pHash, 16 hex digits (images)."),
            _f("dhash", pa.string(), "dHash, 16 hex digits (images)."),
            _f("frames", pa.list_(FRAME), "Video and animation: one PDQ per second (vPDQ): {ts, pdq, quality}."),
            _f("frame_count", pa.int64(), "Video and animation: frames decoded."),
            _f("status", pa.string(), "`hashed`, `skipped` (not available or not allowed) or `failed`."),
            _f("status_reason", pa.string(), "Why the media was skipped or failed (or a note on a partial hash)."),
            _f("hashed_at", UTC_TS, "When the media was hashed (or given its status)."),
            _f("run_id", pa.string(), "The run that wrote this row."),
        ]
    ),
)

CHANNELS = DatasetSpec(
    name="channels",
    version=1,
    about="One snapshot per channel per collection day.",
    layout="`channels/month=YYYY-MM/c<channel_id>.parquet`; `month` is the snapshot's month.",
    primary_key=("channel_id", "snapshot_date"),
    volatile=("snapshot_at", "run_id"),
    schema=pa.schema(
        [
            _f("channel_id", pa.int64(), "Telegram channel id.", False),
            _f("snapshot_date", pa.date32(), "Day of the snapshot (UTC).", False),
            _f("username", pa.string(), "Public @username, without the @, from the allowlist or the API."),
            _f("title", pa.string(), "Channel title."),
            _f("about", pa.string(), "Channel description (live collection)."),
            _f("participants_count", pa.int64(), "Subscribers (live collection)."),
            _f("verified", pa.bool_(), "Verified by Telegram (live collection)."),
            _f("scam", pa.bool_(), "Flagged as scam by Telegram (live collection)."),
            _f("fake", pa.bool_(), "Flagged as fake by Telegram (live collection)."),
            _f("restricted", pa.bool_(), "Restricted by Telegram (live collection)."),
            _f("linked_chat_id", pa.int64(), "Linked discussion group (live collection)."),
            _f("message_count", pa.int64(), "Messages seen in this snapshot's source."),
            _f("source", pa.string(), "`export` or `telegram`."),
            _f("snapshot_at", UTC_TS, "When the snapshot was taken. For an export: its newest message."),
            _f("run_id", pa.string(), "The run that wrote this snapshot."),
        ]
    ),
)

HASHLISTS = DatasetSpec(
    name="hashlists",
    version=1,
    about="Every entry of every imported hash-list version. A version is live for matching when "
    "`hashlist_versions` says it is its list's active version and the list is enabled; the "
    "entry's own `enabled` flag can switch single entries off.",
    layout="`hashlists/list=<list_name>/v<list_version>.parquet`: one file per list version, written "
    "once and never changed.",
    primary_key=("list_name", "list_version", "signal_type", "hash"),
    volatile=(),
    schema=pa.schema(
        [
            _f("list_name", pa.string(), "The list's name, as given to `hashlist import --name`.", False),
            _f("list_version", pa.int32(), "Version of the list: 1 for the first import, then +1 per import.", False),
            _f("entry_id", pa.string(), "The list's own id for the entry, when it has one (CSV `entry_id`, "
               "a vPDQ file's name); null otherwise, and the entry is then known by its hash."),
            _f("signal_type", pa.string(), "pdq, phash, dhash, md5, sha256 or vpdq (aliases such as "
               "`video_md5` are folded into these).", False),
            _f("hash", pa.string(), "Lowercase hex. For vpdq: SHA-256 of the frames, the video's identity.", False),
            _f("category", pa.string(), "Category: the row's own, or the list's `--category`."),
            _f("source", pa.string(), "Where the entry came from (CSV `source` or `collab`), when given."),
            _f("added_at", UTC_TS, "When the entry was added: the list's `added_at`, else the import time."),
            _f("enabled", pa.bool_(), "Entry-level switch; true on import."),
            _f("line", pa.int64(), "Line of the entry in the imported file (the first, for duplicates)."),
            _f("frames", pa.list_(FRAME), "vpdq entries: the video's frames {ts, pdq, quality}."),
        ]
    ),
)

HASHLIST_VERSIONS = DatasetSpec(
    name="hashlist_versions",
    version=1,
    about="One row per imported list version: what was imported, its counts, and its state. The "
    "whole file is replaced atomically, which is how a version becomes active.",
    layout="`hashlist_versions/versions.parquet` (one small file).",
    primary_key=("list_name", "list_version"),
    volatile=(),
    schema=pa.schema(
        [
            _f("list_name", pa.string(), "The list's name.", False),
            _f("list_version", pa.int32(), "The version.", False),
            _f("state", pa.string(), "`active` (the version that matching uses) or `inactive` (an older "
               "or rolled-back version, kept for rollback).", False),
            _f("list_enabled", pa.bool_(), "False after `hashlist disable`: none of the list's versions "
               "is matched until `hashlist enable`."),
            _f("category", pa.string(), "The `--category` given at import."),
            _f("format", pa.string(), "Detected or given format: pytx, csv, md5 or vpdq."),
            _f("source_file", pa.string(), "File name that was imported (no directory)."),
            _f("source_sha256", pa.string(), "SHA-256 of the imported file."),
            _f("entries", pa.int64(), "Entries after folding duplicates."),
            _f("entries_by_signal", pa.string(), "JSON: entries per signal type."),
            _f("duplicates_folded", pa.int64(), "Lines whose (signal type, hash) was already listed."),
            _f("ignored", pa.string(), "JSON: values of hash types chanwatch cannot compute, per type."),
            _f("index_kinds", pa.string(), "JSON: the index built per signal type (flat, mih, exact, vpdq)."),
            _f("imported_at", UTC_TS, "When the version was imported."),
            _f("state_changed_at", UTC_TS, "When `state` or `list_enabled` last changed."),
            _f("run_id", pa.string(), "The import run."),
        ]
    ),
)

MATCHES = DatasetSpec(
    name="matches",
    version=1,
    about="One row per (media item, list entry) match. `match_id` is derived from the media and the "
    "entry, so re-runs and later list versions that list the same entry add nothing.",
    layout="`matches/month=YYYY-MM/c<channel_id>-b<bucket>.parquet`, aligned with `media`.",
    primary_key=("channel_id", "message_id", "media_index", "match_id"),
    volatile=("matched_at", "run_id", "list_version"),
    schema=pa.schema(
        [
            _f("match_id", pa.string(), "SHA-256 (32 hex) of channel, message, media index, list, signal "
               "type and entry hash.", False),
            _f("channel_id", pa.int64(), "Channel of the matched media.", False),
            _f("message_id", pa.int64(), "Message of the matched media.", False),
            _f("media_index", pa.int32(), "Media position within the message.", False),
            _f("date", UTC_TS, "Date of the message (UTC); places the row in its month partition."),
            _f("media_kind", pa.string(), "photo, video, ... as in `media`."),
            _f("signal_type", pa.string(), "The signal that matched: pdq, phash, dhash, md5, sha256 or vpdq."),
            _f("distance", pa.int32(), "Hamming distance (0 for exact signals; null for vpdq)."),
            _f("threshold", pa.int32(), "The distance threshold in force (vpdq: the frame distance)."),
            _f("query_match_percent", pa.float64(), "vpdq: share of the media's frames that match the entry."),
            _f("compared_match_percent", pa.float64(), "vpdq: share of the entry's frames that match."),
            _f("media_hash", pa.string(), "The media's hash that matched (vpdq: its SHA-256)."),
            _f("list_name", pa.string(), "The list."),
            _f("list_version", pa.int32(), "The list version that first found the match."),
            _f("entry_id", pa.string(), "The entry's id: the list's own, else its hash."),
            _f("entry_hash", pa.string(), "The entry's hash (vpdq: SHA-256 of its frames)."),
            _f("category", pa.string(), "The entry's category."),
            _f("message_url", pa.string(), "Public link to the post."),
            _f("matched_at", UTC_TS, "When the match was first found."),
            _f("run_id", pa.string(), "The match run that found it."),
        ]
    ),
)

CHANNEL_DAILY = DatasetSpec(
    name="aggregates/channel_daily",
    version=1,
    about="Activity per channel and UTC day, for researchers and the report. Built by `chanwatch aggregate` "
    "from `messages`, `media` and `matches`; a day is recomputed only when its inputs changed.",
    layout="`aggregates/channel_daily/month=YYYY-MM/part.parquet`: one file per month.",
    primary_key=("channel_id", "day"),
    volatile=("computed_at",),
    schema=pa.schema(
        [
            _f("channel_id", pa.int64(), "Telegram channel id.", False),
            _f("day", pa.date32(), "UTC day of the messages' `date`.", False),
            _f("messages", pa.int64(), "Messages posted that day (service messages excluded; deleted ones "
               "included, as they were posted)."),
            _f("messages_deleted", pa.int64(), "Of those, messages later seen deleted."),
            _f("forwarded_messages", pa.int64(), "Messages that are forwards of another chat's post."),
            _f("views", pa.int64(), "Sum of the view counters (latest known values; live collection only)."),
            _f("forwards", pa.int64(), "Sum of the forward counters (how often the day's posts were forwarded "
               "onwards)."),
            _f("replies", pa.int64(), "Sum of the reply counters."),
            _f("reactions", pa.int64(), "Sum of all reaction counts."),
            _f("media", pa.int64(), "Media items in the day's messages."),
            _f("media_hashed", pa.int64(), "Of those, media hashed (`status = 'hashed'`)."),
            _f("matches", pa.int64(), "Match rows on the day's media (one media item can match several entries)."),
            _f("matched_media", pa.int64(), "Distinct media items with at least one match."),
            _f("computed_at", UTC_TS, "When this row was last recomputed."),
        ]
    ),
)

FORWARD_EDGES = DatasetSpec(
    name="aggregates/forward_edges",
    version=1,
    about="How material spreads: one row per (forward source, forwarding channel). A source is known by "
    "its channel id when Telegram gives it, else by its display name.",
    layout="`aggregates/forward_edges/edges.parquet` (one file, rebuilt from per-day partial counts).",
    primary_key=("source_key", "target_channel_id"),
    volatile=("computed_at",),
    schema=pa.schema(
        [
            _f("source_key", pa.string(), "`id:<channel_id>` or `name:<display name>`: the edge's source.", False),
            _f("source_channel_id", pa.int64(), "Source channel id, when known."),
            _f("source_name", pa.string(), "Source display name as the forward shows it (may be pseudonymised)."),
            _f("target_channel_id", pa.int64(), "The monitored channel that forwarded the posts.", False),
            _f("forwards", pa.int64(), "Forwarded messages from source to target."),
            _f("forwards_with_media", pa.int64(), "Of those, messages with media."),
            _f("forwards_matched", pa.int64(), "Of those, messages whose media matched a list."),
            _f("first_date", UTC_TS, "Date of the first forward seen."),
            _f("last_date", UTC_TS, "Date of the latest forward seen."),
            _f("computed_at", UTC_TS, "When the edge was last recomputed."),
        ]
    ),
)

MATCHES_DAILY = DatasetSpec(
    name="aggregates/matches_daily",
    version=1,
    about="Matches per UTC day (of the matched message), list, category and signal type.",
    layout="`aggregates/matches_daily/month=YYYY-MM/part.parquet`: one file per month.",
    primary_key=("day", "list_name", "category", "signal_type"),
    volatile=("computed_at",),
    schema=pa.schema(
        [
            _f("day", pa.date32(), "UTC day of the matched message's `date`.", False),
            _f("list_name", pa.string(), "The list.", False),
            _f("category", pa.string(), "The entry's category (empty string when the list gives none).", False),
            _f("signal_type", pa.string(), "pdq, phash, dhash, md5, sha256 or vpdq.", False),
            _f("matches", pa.int64(), "Match rows."),
            _f("media", pa.int64(), "Distinct media items matched."),
            _f("channels", pa.int64(), "Distinct channels with a match."),
            _f("computed_at", UTC_TS, "When this row was last recomputed."),
        ]
    ),
)

ALL_DATASETS: tuple[DatasetSpec, ...] = (MESSAGES, MEDIA, CHANNELS, HASHLISTS, HASHLIST_VERSIONS, MATCHES,
                                         CHANNEL_DAILY, FORWARD_EDGES, MATCHES_DAILY)
AGGREGATES: tuple[DatasetSpec, ...] = (CHANNEL_DAILY, FORWARD_EDGES, MATCHES_DAILY)
BUCKET_SIZE = 50_000
