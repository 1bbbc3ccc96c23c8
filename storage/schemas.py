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
    version=2,
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

ALL_DATASETS: tuple[DatasetSpec, ...] = (MESSAGES, MEDIA, CHANNELS)
BUCKET_SIZE = 50_000
