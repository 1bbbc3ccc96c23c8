"""Turn Telethon TL objects (messages, channels) into canonical rows. Pure: no I/O, no network.

The live collector hands each `types.Message` / `types.MessageService` here. Rows carry the same
columns as an export's, plus what only the API knows (views, forwards, replies, grouped_id), and
the raw TL object as JSON with the API layer it follows, so columns can be re-derived later.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from telethon.helpers import add_surrogate, del_surrogate
from telethon.tl import types
from telethon.tl.alltlobjects import LAYER

RAW_SCHEMA = f"telegram-layer-{LAYER}"
PICTURE_MIME_PREFIXES = ("image/", "video/")


def refusal_reason(entity: Any) -> str | None:
    """Why this entity must not be collected, or None for a public broadcast channel."""
    if isinstance(entity, types.User):
        return "a bot, not a public broadcast channel" if entity.bot else "a user, not a public broadcast channel"
    if isinstance(entity, types.Chat | types.ChatForbidden):
        return "a group, not a public broadcast channel"
    if isinstance(entity, types.ChannelForbidden):
        return "a channel this account cannot access"
    if not isinstance(entity, types.Channel):
        return f"not a channel ({type(entity).__name__})"
    if entity.megagroup or entity.gigagroup or not entity.broadcast:
        return "a group (megagroup), not a public broadcast channel"
    if not public_username(entity):
        return "a private channel (no public username)"
    return None


def public_username(channel: Any) -> str | None:
    if getattr(channel, "username", None):
        return channel.username
    for name in getattr(channel, "usernames", None) or ():
        if name.active:
            return name.username
    return None


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def raw_json(obj: Any) -> str:
    """The TL object as JSON (`to_dict()`; bytes as base64, dates as ISO 8601)."""
    return orjson.dumps(obj.to_dict(), default=_json_default).decode()


def _entity_text(text: str, entity: Any) -> str:
    return del_surrogate(text[entity.offset:entity.offset + entity.length])


def text_features(message: str | None, entities: list[Any] | None) -> tuple[list[str], list[str], list[str]]:
    """URLs, hashtags and mentions from the message's entities (offsets are in UTF-16 units)."""
    urls: list[str] = []
    hashtags: list[str] = []
    mentions: list[str] = []
    if not message or not entities:
        return urls, hashtags, mentions
    text = add_surrogate(message)
    for entity in entities:
        if isinstance(entity, types.MessageEntityTextUrl):
            urls.append(entity.url)
        elif isinstance(entity, types.MessageEntityUrl):
            urls.append(_entity_text(text, entity))
        elif isinstance(entity, types.MessageEntityHashtag):
            hashtags.append(_entity_text(text, entity))
        elif isinstance(entity, types.MessageEntityMention):
            mentions.append(_entity_text(text, entity))
    return urls, hashtags, mentions


def reactions(message: Any) -> list[dict[str, Any]] | None:
    results = getattr(getattr(message, "reactions", None), "results", None)
    if not results:
        return None
    out = []
    for item in results:
        reaction = item.reaction
        if isinstance(reaction, types.ReactionEmoji):
            name = reaction.emoticon
        elif isinstance(reaction, types.ReactionCustomEmoji):
            name = f"custom:{reaction.document_id}"
        elif isinstance(reaction, types.ReactionPaid):
            name = "paid"
        else:
            name = type(reaction).__name__
        out.append({"reaction": name, "count": item.count})
    return out


def _attr(document: Any, kind: type) -> Any:
    return next((a for a in document.attributes if isinstance(a, kind)), None)


def media_kind(media: Any) -> str | None:
    """The media kind, named as `messages.media_kind` names them for exports."""
    if media is None:
        return None
    if isinstance(media, types.MessageMediaPhoto):
        return "photo" if media.photo else None
    if isinstance(media, types.MessageMediaDocument):
        document = media.document
        if not isinstance(document, types.Document):
            return None
        if _attr(document, types.DocumentAttributeSticker):
            return "sticker"
        if _attr(document, types.DocumentAttributeAnimated):
            return "animation"
        video = _attr(document, types.DocumentAttributeVideo)
        if video:
            return "video_message" if video.round_message else "video"
        audio = _attr(document, types.DocumentAttributeAudio)
        if audio:
            return "voice_message" if audio.voice else "audio_file"
        return "document"
    return {
        types.MessageMediaPoll: "poll", types.MessageMediaGeo: "location", types.MessageMediaGeoLive: "location",
        types.MessageMediaVenue: "location", types.MessageMediaContact: "contact", types.MessageMediaGame: "game",
        types.MessageMediaInvoice: "invoice", types.MessageMediaWebPage: "webpage", types.MessageMediaDice: "dice",
    }.get(type(media), type(media).__name__.removeprefix("MessageMedia").lower() or None)


@dataclass(frozen=True)
class MediaRef:
    """What the collector may download for one media item, and the metadata of its row."""

    message_id: int
    media_kind: str
    file_id: int
    mime_type: str | None
    file_name: str | None
    file_size: int | None
    width: int | None
    height: int | None
    duration_s: float | None
    # Downloadable variants, best first: (variant name, size in bytes, Telethon `thumb` selector or None
    # for the whole file).
    variants: tuple[tuple[str, int, Any], ...]
    skip_reason: str | None = None


def _photo_size_bytes(size: Any) -> int:
    if isinstance(size, types.PhotoSizeProgressive):
        return max(size.sizes)
    return getattr(size, "size", 0) or 0


def _downloadable_sizes(sizes: list[Any]) -> list[Any]:
    """Real image sizes (not stripped or vector previews), largest first."""
    real = [s for s in sizes or () if isinstance(s, types.PhotoSize | types.PhotoSizeProgressive)]
    return sorted(real, key=lambda s: s.w * s.h, reverse=True)


def media_ref(message: Any) -> MediaRef | None:
    """The media item of a message (a channel post carries at most one; albums are several posts)."""
    media = getattr(message, "media", None)
    kind = media_kind(media)
    if kind is None:
        return None
    if isinstance(media, types.MessageMediaPhoto):
        photo = media.photo
        sizes = _downloadable_sizes(photo.sizes)
        best = sizes[0] if sizes else None
        return MediaRef(message.id, kind, photo.id, "image/jpeg", None, _photo_size_bytes(best) if best else None,
                        best.w if best else None, best.h if best else None, None,
                        tuple((s.type, _photo_size_bytes(s), s.type) for s in sizes),
                        None if sizes else "photo has no downloadable size")
    if not isinstance(media, types.MessageMediaDocument):
        return None  # polls, locations, web pages: no file
    document = media.document
    video = _attr(document, types.DocumentAttributeVideo)
    image = _attr(document, types.DocumentAttributeImageSize)
    audio = _attr(document, types.DocumentAttributeAudio)
    name = _attr(document, types.DocumentAttributeFilename)
    width = video.w if video else image.w if image else None
    height = video.h if video else image.h if image else None
    duration = float(video.duration) if video else float(audio.duration) if audio else None
    thumbs = _downloadable_sizes(document.thumbs or [])
    variants = [("full", document.size, None)] + [("thumbnail", _photo_size_bytes(t), t.type) for t in thumbs[:1]]
    skip = None
    mime = document.mime_type or ""
    if kind in ("document", "audio_file", "voice_message") and not mime.startswith(PICTURE_MIME_PREFIXES):
        skip = f"{kind} ({mime or 'no MIME type'}) is not an image or video: not downloaded"
    return MediaRef(message.id, kind, document.id, document.mime_type, name.file_name if name else None,
                    document.size, width, height, duration, tuple(variants), skip)


def _peer_channel_id(peer: Any) -> int | None:
    return peer.channel_id if isinstance(peer, types.PeerChannel) else None


def service_action(message: Any) -> str:
    """`MessageActionChatEditTitle` -> `chat_edit_title`."""
    name = type(message.action).__name__.removeprefix("MessageAction")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def message_row(message: Any, channel_id: int, username: str, collected_at: dt.datetime,
                run_id: str) -> dict[str, Any]:
    """A `messages` row for one TL message (or service message)."""
    is_service = isinstance(message, types.MessageService)
    text = None if is_service else message.message
    urls, hashtags, mentions = text_features(text, None if is_service else message.entities)
    fwd = None if is_service else message.fwd_from
    reply = message.reply_to if isinstance(message.reply_to, types.MessageReplyHeader) else None
    replies = None if is_service else message.replies
    return {
        "channel_id": channel_id, "message_id": message.id, "date": message.date,
        "edit_date": None if is_service else message.edit_date, "text": text,
        "views": None if is_service else message.views, "forwards": None if is_service else message.forwards,
        "replies": replies.replies if replies is not None else None,
        "reactions": None if is_service else reactions(message),
        "grouped_id": None if is_service else message.grouped_id,
        "reply_to_message_id": reply.reply_to_msg_id if reply and reply.reply_to_peer_id is None else None,
        "fwd_from_channel_id": _peer_channel_id(fwd.from_id) if fwd else None,
        "fwd_from_message_id": fwd.channel_post if fwd else None,
        "fwd_from_name": fwd.from_name or fwd.post_author if fwd else None,
        "post_author": None if is_service else message.post_author,
        "media_kind": None if is_service else media_kind(message.media),
        "urls": urls, "hashtags": hashtags, "mentions": mentions,
        "url": f"https://t.me/{username}/{message.id}",
        "message_type": "service" if is_service else "message",
        "service_action": service_action(message) if is_service else None,
        "deleted": False, "source": "telegram", "raw_json": raw_json(message), "raw_schema": RAW_SCHEMA,
        "collected_at": collected_at, "run_id": run_id,
    }


def channel_row(channel: Any, full: Any, snapshot_at: dt.datetime, run_id: str) -> dict[str, Any]:
    """A `channels` snapshot from `Channel` and `ChannelFull` (GetFullChannelRequest)."""
    full_chat = getattr(full, "full_chat", full)
    return {
        "channel_id": channel.id, "snapshot_date": snapshot_at.date(), "username": public_username(channel),
        "title": channel.title, "about": getattr(full_chat, "about", None),
        "participants_count": getattr(full_chat, "participants_count", None) or channel.participants_count,
        "verified": bool(channel.verified), "scam": bool(channel.scam), "fake": bool(channel.fake),
        "restricted": bool(channel.restricted), "linked_chat_id": getattr(full_chat, "linked_chat_id", None),
        "message_count": None, "source": "telegram", "snapshot_at": snapshot_at, "run_id": run_id,
    }
