"""An offline stand-in for Telethon's `TelegramClient`, built from real Telethon objects.

`FakeTelegramClient` *is* a `TelegramClient` (a subclass built on a `StringSession`) that never opens a
socket. It answers from a `FakeWorld` with real TL objects (`telethon.tl.types`) and raises real
`telethon.errors`, so a collector cannot tell it from the real client through the methods it uses.

How faithful it is, and where it is not:

* The fake plays the *server*. `iter_messages`, `get_messages`, `download_media` and TL request
  resolution are Telethon's own code: the fake answers the requests they make
  (`messages.GetHistoryRequest`, `channels.GetMessagesRequest`, ...) the way Telegram does, with
  `offset_id`/`add_offset` paging. `min_id`, `max_id`, `offset_date`, `reverse`, `limit`, `ids=`, `TotalList`
  and `Message._finish_init` therefore behave exactly as in production.
* `get_entity` and `get_input_entity` follow Telethon's logic (an unknown username gives
  `ValueError` *from* `UsernameNotOccupiedError`, as the real client does), but every entity in the world
  counts as cached, so bare and marked integer ids and `Peer` objects resolve without a prior look-up.
* Scripted flood waits (`world.flood_on`) raise once, whatever `flood_sleep_threshold` is. The real client
  sleeps through waits up to that threshold, and after a longer one it refuses further requests of the
  same type until the wait is over (`TelegramClient._flood_waited_requests`). Set
  ``world.realistic_floods = True`` for both (on a fake clock: nothing sleeps, `world.advance(s)` moves
  time on, and each slept wait is logged in `client.calls` as ``("flood_sleep", ...)``).
* Only `download_media(..., file=bytes)` downloads; any other target, and the low-level
  `download_file`/`iter_download`, raise `AssertionError`. Any request the fake does not know raises
  `AssertionError` naming it; writes, joins and read receipts raise ``AssertionError("forbidden: ...")``.
* Requests need `connect()` first, as for the real client (`ConnectionError` otherwise).
* The world changes as Telegram's does: `world.delete` removes messages (asked for by id, they come back as
  `MessageEmpty`, which `get_messages(entity, ids=[...])` turns into None), `world.rename` changes or drops a
  username, and `world.remove_channel` takes a whole channel away (its name stops resolving, and requests
  by id raise the real error Telegram sends, `ChannelPrivateError` unless told otherwise).

`client.calls` lists ``(method, details)`` for the calls the code under test made itself (calls that
Telethon makes internally are not listed); `client.requests` lists the type of every request that
reached the fake server, including those Telethon sends on the caller's behalf (`GetHistoryRequest` for
`iter_messages`, `ResolveUsernameRequest` for `get_entity("name")`, `upload.GetFileRequest` for a download).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import dataclasses
import datetime as dt
import functools
import inspect
import io
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

from PIL import Image
from telethon import TelegramClient, errors, utils
from telethon.client.messages import _IDsIter, _MessagesIter
from telethon.sessions import StringSession
from telethon.tl import functions, types
from telethon.tl.tlobject import TLObject, TLRequest

from tests import media_factory

UTC = dt.UTC
Entity = types.User | types.Chat | types.Channel

# Bytes behind every downloadable thing: ("photo", photo id, size type), ("document", document id, "")
# for the whole file and ("document", document id, thumb type) for its thumbnails. Filled by the media
# factories below; `download_media` serves from it.
MEDIA_BYTES: dict[tuple[str, int, str], bytes] = {}

# Set while the fake (or Telethon code it called) is working, so only the caller's own calls are logged.
_INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("telegram_fake_inside", default=False)


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------

def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    """A timezone-aware UTC datetime."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


DEFAULT_DATE = utc(2024, 1, 1)


def _date(value: dt.datetime | None, default: dt.datetime = DEFAULT_DATE) -> dt.datetime:
    """Telegram dates are whole seconds in UTC; naive datetimes are refused (they hide bugs)."""
    value = default if value is None else value
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: give TL dates a timezone (UTC)")
    return value.astimezone(UTC).replace(microsecond=0)


def access_hash_for(kind: str, object_id: int) -> int:
    """A stable, made-up 63-bit access hash for an entity or a file (the same in every process)."""
    seed = sum((i + 1) * ord(c) for i, c in enumerate(kind))
    return ((seed * 1_000_003 + object_id) * 0x9E3779B97F4A7C15) & 0x7FFF_FFFF_FFFF_FFFF


def _timestamp(value: Any) -> int:
    """A TL date as Telegram sees it (what Telethon would serialise), 0 for none."""
    return struct.unpack("<i", TLObject.serialize_datetime(value))[0]


def utf16_span(text: str, part: str, start: int = 0) -> tuple[int, int]:
    """(offset, length) of `part` in `text` in UTF-16 code units, as TL message entities count."""
    index = text.index(part, start)
    return len(text[:index].encode("utf-16-le")) // 2, len(part.encode("utf-16-le")) // 2


def entity(kind: type, text: str, part: str, **fields: Any) -> Any:
    """A TL message entity (e.g. `types.MessageEntityUrl`) covering `part` of `text`."""
    offset, length = utf16_span(text, part)
    return kind(offset=offset, length=length, **fields)


# --------------------------------------------------------------------------------------------------
# Entity factories
# --------------------------------------------------------------------------------------------------

def make_channel(channel_id: int, username: str | None, title: str, *, broadcast: bool = True,
                 megagroup: bool = False, access_hash: int | None = None, verified: bool = False,
                 scam: bool = False, fake: bool = False, restricted: bool = False,
                 date: dt.datetime | None = None, participants_count: int | None = None) -> types.Channel:
    """A `types.Channel`: a broadcast channel, or a supergroup with ``megagroup=True``.

    ``left=True``, as for a channel the collecting account reads without joining.
    """
    reasons = [types.RestrictionReason(platform="all", reason="other", text="Restricted in this demo.")]
    return types.Channel(
        id=channel_id, title=title, photo=types.ChatPhotoEmpty(), date=_date(date),
        broadcast=broadcast and not megagroup, megagroup=megagroup, verified=verified, scam=scam, fake=fake,
        restricted=restricted, restriction_reason=reasons if restricted else None,
        access_hash=access_hash_for("channel", channel_id) if access_hash is None else access_hash,
        username=username, participants_count=participants_count, left=True,
    )


def make_user(user_id: int, username: str | None = None, first_name: str = "Demo", last_name: str | None = None,
              *, bot: bool = False, is_self: bool = False, access_hash: int | None = None, verified: bool = False,
              scam: bool = False, fake: bool = False, phone: str | None = None) -> types.User:
    """A `types.User`; ``bot=True`` for a bot account, ``is_self=True`` for the logged-in account."""
    return types.User(
        id=user_id, is_self=is_self, bot=bot, bot_info_version=1 if bot else None, verified=verified, scam=scam,
        fake=fake, access_hash=access_hash_for("user", user_id) if access_hash is None else access_hash,
        first_name=first_name, last_name=last_name, username=username, phone=phone,
    )


def make_chat(chat_id: int, title: str, *, participants_count: int = 3, date: dt.datetime | None = None) -> types.Chat:
    """A `types.Chat`: a basic (legacy) group."""
    return types.Chat(id=chat_id, title=title, photo=types.ChatPhotoEmpty(), participants_count=participants_count,
                      date=_date(date), version=1)


def make_full_channel(channel: types.Channel, *, about: str = "", participants_count: int = 0,
                      linked_chat_id: int | None = None) -> types.messages.ChatFull:
    """What `channels.GetFullChannelRequest` returns for `channel`."""
    full = types.ChannelFull(
        id=channel.id, about=about, read_inbox_max_id=0, read_outbox_max_id=0, unread_count=0,
        chat_photo=types.PhotoEmpty(id=0), notify_settings=types.PeerNotifySettings(), bot_info=[], pts=1,
        participants_count=participants_count, admins_count=None, linked_chat_id=linked_chat_id,
        can_view_participants=not channel.broadcast, available_reactions=types.ChatReactionsAll(),
    )
    return types.messages.ChatFull(full_chat=full, chats=[channel], users=[])


# --------------------------------------------------------------------------------------------------
# Message factories
# --------------------------------------------------------------------------------------------------

def make_message(channel_id: int, message_id: int, date: dt.datetime, text: str = "", *,
                 views: int | None = None, forwards: int | None = None,
                 replies: int | types.MessageReplies | None = None,
                 reactions: Sequence[tuple[str, int]] | types.MessageReactions | None = None,
                 edit_date: dt.datetime | None = None, grouped_id: int | None = None, post_author: str | None = None,
                 reply_to_msg_id: int | None = None,
                 fwd_from: tuple[Any, ...] | types.MessageFwdHeader | None = None,
                 entities: list[Any] | None = None, media: Any = None, post: bool = True,
                 from_user_id: int | None = None, pinned: bool = False, noforwards: bool = False) -> types.Message:
    """A channel post (`post=True`, no sender but the channel) or, with ``from_user_id``, a group message.

    `fwd_from` is ``(from_channel_id | None, channel_post | None, from_name | None[, date])``.
    """
    date = _date(date)
    if isinstance(replies, int):
        replies = types.MessageReplies(replies=replies, replies_pts=message_id + replies)
    if reactions is not None and not isinstance(reactions, types.MessageReactions):
        reactions = types.MessageReactions(
            results=[types.ReactionCount(reaction=types.ReactionEmoji(emoticon=e), count=c) for e, c in reactions],
            can_see_list=False)
    if fwd_from is not None and not isinstance(fwd_from, types.MessageFwdHeader):
        from_channel, channel_post, from_name, *rest = fwd_from
        fwd_from = types.MessageFwdHeader(
            date=_date(rest[0]) if rest else date - dt.timedelta(hours=1),
            from_id=types.PeerChannel(from_channel) if from_channel else None,
            channel_post=channel_post, from_name=from_name)
    return types.Message(
        id=message_id, peer_id=types.PeerChannel(channel_id), date=date, message=text, post=post,
        from_id=types.PeerUser(from_user_id) if from_user_id else None,
        fwd_from=fwd_from, reply_to=types.MessageReplyHeader(reply_to_msg_id=reply_to_msg_id) if reply_to_msg_id
        else None, media=media, entities=entities or None, views=views, forwards=forwards, replies=replies,
        edit_date=_date(edit_date) if edit_date else None, post_author=post_author, grouped_id=grouped_id,
        reactions=reactions, pinned=pinned, noforwards=noforwards,
    )


def make_service_message(channel_id: int, message_id: int, date: dt.datetime, action: Any, *,
                         post: bool = True) -> types.MessageService:
    """A service message, e.g. ``types.MessageActionChannelCreate(title=...)``."""
    return types.MessageService(id=message_id, peer_id=types.PeerChannel(channel_id), date=_date(date),
                                action=action, post=post)


# --------------------------------------------------------------------------------------------------
# Media factories (the bytes go into MEDIA_BYTES)
# --------------------------------------------------------------------------------------------------

def register_bytes(kind: str, file_id: int, size_type: str, data: bytes) -> None:
    """Make `data` downloadable as ``(kind, file_id, size_type)`` (kind "photo" or "document")."""
    MEDIA_BYTES[(kind, file_id, size_type)] = bytes(data)


def _image_size(data: bytes, default: tuple[int, int] = (90, 90)) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return default


def photo_media(photo_id: int, sizes: Sequence[tuple[str, int, int, bytes]], *, access_hash: int | None = None,
                date: dt.datetime | None = None, dc_id: int = 2, stripped: bytes | None = None,
                progressive: bool = False, spoiler: bool = False) -> types.MessageMediaPhoto:
    """A photo with `sizes` ``(type, w, h, data)``, smallest first, as Telegram lists them.

    ``stripped`` (see `stripped_thumb`) prepends a `PhotoStrippedSize` "i"; ``progressive=True`` makes the
    last size a `PhotoSizeProgressive`, which is how Telegram sends the largest JPEG nowadays.
    """
    tl_sizes: list[Any] = []
    if stripped is not None:
        tl_sizes.append(types.PhotoStrippedSize(type="i", bytes=stripped))
    for index, (size_type, w, h, data) in enumerate(sizes):
        register_bytes("photo", photo_id, size_type, data)
        if progressive and index == len(sizes) - 1:
            steps = sorted({max(1, len(data) // 4), max(1, len(data) // 2), len(data)})
            tl_sizes.append(types.PhotoSizeProgressive(type=size_type, w=w, h=h, sizes=steps))
        else:
            tl_sizes.append(types.PhotoSize(type=size_type, w=w, h=h, size=len(data)))
    photo = types.Photo(id=photo_id, access_hash=access_hash_for("photo", photo_id) if access_hash is None
                        else access_hash, file_reference=b"", date=_date(date), sizes=tl_sizes, dc_id=dc_id)
    return types.MessageMediaPhoto(photo=photo, spoiler=spoiler or None)


def document_media(doc_id: int, data: bytes, mime_type: str, *, attributes: list[Any],
                   thumb: bytes | None = None, access_hash: int | None = None, date: dt.datetime | None = None,
                   dc_id: int = 2, video: bool = False, round_message: bool = False) -> types.MessageMediaDocument:
    """A document; ``thumb`` (JPEG bytes) becomes its `PhotoSize` "m" thumbnail."""
    register_bytes("document", doc_id, "", data)
    thumbs = None
    if thumb is not None:
        register_bytes("document", doc_id, "m", thumb)
        w, h = _image_size(thumb)
        thumbs = [types.PhotoSize(type="m", w=w, h=h, size=len(thumb))]
    document = types.Document(id=doc_id, access_hash=access_hash_for("document", doc_id) if access_hash is None
                              else access_hash, file_reference=b"", date=_date(date), mime_type=mime_type,
                              size=len(data), dc_id=dc_id, attributes=attributes, thumbs=thumbs)
    return types.MessageMediaDocument(document=document, video=video or None, round=round_message or None)


def video_media(doc_id: int, data: bytes, w: int, h: int, duration: float, *, thumb: bytes | None = None,
                round_message: bool = False, supports_streaming: bool = True, file_name: str = "video.mp4",
                mime_type: str = "video/mp4") -> types.MessageMediaDocument:
    attributes = [types.DocumentAttributeVideo(duration=duration, w=w, h=h, round_message=round_message or None,
                                               supports_streaming=supports_streaming or None),
                  types.DocumentAttributeFilename(file_name=file_name)]
    return document_media(doc_id, data, mime_type, attributes=attributes, thumb=thumb, video=True,
                          round_message=round_message)


def animation_media(doc_id: int, data: bytes, w: int, h: int, duration: float, *, thumb: bytes | None = None,
                    file_name: str = "animation.mp4") -> types.MessageMediaDocument:
    """A "GIF" as Telegram serves it: a silent MP4 marked `DocumentAttributeAnimated`."""
    attributes = [types.DocumentAttributeAnimated(),
                  types.DocumentAttributeVideo(duration=duration, w=w, h=h, supports_streaming=True, nosound=True),
                  types.DocumentAttributeFilename(file_name=file_name)]
    return document_media(doc_id, data, "video/mp4", attributes=attributes, thumb=thumb)


def sticker_media(doc_id: int, data: bytes, *, w: int = 512, h: int = 512, emoji: str = "🙂",
                  thumb: bytes | None = None) -> types.MessageMediaDocument:
    """A static WebP sticker."""
    attributes = [types.DocumentAttributeImageSize(w=w, h=h),
                  types.DocumentAttributeSticker(alt=emoji, stickerset=types.InputStickerSetEmpty()),
                  types.DocumentAttributeFilename(file_name="sticker.webp")]
    return document_media(doc_id, data, "image/webp", attributes=attributes, thumb=thumb)


def file_media(doc_id: int, data: bytes, mime_type: str, file_name: str, *,
               thumb: bytes | None = None) -> types.MessageMediaDocument:
    return document_media(doc_id, data, mime_type, attributes=[types.DocumentAttributeFilename(file_name=file_name)],
                          thumb=thumb)


def unsupported_media(kind: str = "geo") -> Any:
    """Media without a file: "geo" (a location), "webpage" (an empty link preview) or "dice"."""
    if kind == "geo":
        return types.MessageMediaGeo(geo=types.GeoPoint(long=13.405, lat=52.52, access_hash=1))
    if kind == "webpage":
        return types.MessageMediaWebPage(webpage=types.WebPageEmpty(id=1, url="https://example.org/"))
    if kind == "dice":
        return types.MessageMediaDice(value=4, emoticon="🎲")
    raise ValueError(f"unknown unsupported media kind {kind!r}")


# Benign synthetic pictures and clips (gradients with noise, moving shapes: see tests/media_factory.py).

PHOTO_SIZES = (("m", 320, 240), ("x", 640, 480), ("y", 800, 600))


def jpeg_sizes(seed: int, sizes: Sequence[tuple[str, int, int]] = PHOTO_SIZES) -> list[tuple[str, int, int, bytes]]:
    """One synthetic picture at several sizes, ``(type, w, h, jpeg)``, as Telegram scales a photo."""
    largest = max(sizes, key=lambda s: s[1] * s[2])
    original = Image.fromarray(media_factory.gradient(seed, (largest[1], largest[2])))
    out = []
    for size_type, w, h in sizes:
        buf = io.BytesIO()
        original.resize((w, h), Image.Resampling.LANCZOS).save(buf, "JPEG", quality=85)
        out.append((size_type, w, h, buf.getvalue()))
    return out


# Telegram's stripped thumbnails reuse one fixed JPEG header; its quantisation tables, in natural order.
_ZIGZAG = (0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
           14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46,
           53, 60, 61, 54, 47, 55, 62, 63)


def stripped_thumb(seed: int = 0, size: tuple[int, int] = (40, 30)) -> bytes:
    """The bytes of a valid `PhotoStrippedSize` (``utils.stripped_photo_to_jpg`` makes a real JPEG of it)."""
    header = utils.stripped_photo_to_jpg(b"\x01\x00\x00")
    tables = []
    pos = 0
    while (pos := header.find(b"\xff\xdb\x00C", pos)) >= 0:
        natural = [0] * 64
        for k, value in enumerate(header[pos + 5:pos + 69]):
            natural[_ZIGZAG[k]] = value
        tables.append(natural)
        pos += 69
    buf = io.BytesIO()
    Image.fromarray(media_factory.gradient(seed, size)).save(buf, "JPEG", qtables=tables, subsampling=2,
                                                             optimize=False)
    data = buf.getvalue()
    sos = data.find(b"\xff\xda")
    scan = data[sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big"):-2]
    return bytes([1, size[1], size[0]]) + scan


def frame_jpeg(index: int = 0, size: tuple[int, int] = (160, 120)) -> bytes:
    """A JPEG of one frame of the moving-shapes clip (what a video thumbnail looks like)."""
    buf = io.BytesIO()
    Image.fromarray(media_factory.shapes_frame(index, size)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------
# The world
# --------------------------------------------------------------------------------------------------

# Method-level flood targets, and the request type whose flood wait the real client would remember.
_FLOOD_REQUEST: dict[str, type] = {
    "iter_messages": functions.messages.GetHistoryRequest, "get_entity": functions.contacts.ResolveUsernameRequest,
    "get_input_entity": functions.contacts.ResolveUsernameRequest, "download_media": functions.upload.GetFileRequest,
    "get_me": functions.users.GetUsersRequest,
}
METHOD_KEYS = frozenset(_FLOOD_REQUEST)


@dataclasses.dataclass
class FloodRule:
    """Raise ``FloodWaitError(seconds)`` once, on the call after `after_calls` calls (for "iter_messages":
    on the message after `after_calls` messages were yielded, by any message iterator)."""

    method: str
    after_calls: int
    seconds: int
    request_type: type | None = None
    count: int = 0
    fired: bool = False

    def matches(self, key: str, request_type: type | None) -> bool:
        if self.request_type is not None:
            return request_type is self.request_type
        return self.method == key


@dataclasses.dataclass
class _Failure:
    error: BaseException
    times: int | None  # None: every time


def _take(failures: dict[Any, _Failure], key: Any) -> BaseException | None:
    failure = failures.get(key)
    if failure is None:
        return None
    if failure.times is not None:
        failure.times -= 1
        if failure.times <= 0:
            del failures[key]
    return failure.error


class FakeWorld:
    """What the fake Telegram server knows. Tests may change it between (and during) runs.

    `messages[channel_id][message_id]` holds the history of each channel (bare channel id), `by_id` the
    entities by marked peer id (``utils.get_peer_id``), `by_username` by lower-case username, and
    `full_channels[channel_id]` what `GetFullChannelRequest` returns.
    """

    def __init__(self, me: types.User | None = None) -> None:
        self.me = me or make_user(1999000099, "chanwatch_collector", "Collector", is_self=True)
        self.by_id: dict[int, Entity] = {}
        self.by_username: dict[str, Entity] = {}
        self.full_channels: dict[int, types.messages.ChatFull] = {}
        self.full_users: dict[int, str] = {}  # user id -> about
        self.messages: dict[int, dict[int, types.Message | types.MessageService]] = {}
        self.floods: list[FloodRule] = []
        self.username_failures: dict[str, _Failure] = {}
        self.channel_failures: dict[int, _Failure] = {}
        self.download_failures: dict[int, _Failure] = {}
        self.removed_channels: dict[int, BaseException] = {}
        self.realistic_floods = False
        self.clock_offset = 0.0
        self.add_user(self.me)

    def now(self) -> float:
        """The fake clock (wall time plus `advance`), used by ``realistic_floods``."""
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        self.clock_offset += seconds

    # Entities ------------------------------------------------------------------------------------

    def _add_entity(self, entity: Entity) -> Entity:
        peer_id = utils.get_peer_id(entity)
        for name in [name for name, known in self.by_username.items() if utils.get_peer_id(known) == peer_id]:
            del self.by_username[name]
        self.by_id[peer_id] = entity
        if getattr(entity, "username", None):
            self.by_username[entity.username.lower()] = entity
        return entity

    def add_channel(self, channel: types.Channel, *, about: str = "", participants_count: int | None = None,
                    linked_chat_id: int | None = None, full: types.messages.ChatFull | None = None) -> types.Channel:
        self._add_entity(channel)
        if participants_count is None:
            participants_count = channel.participants_count or 0
        self.full_channels[channel.id] = full or make_full_channel(
            channel, about=about, participants_count=participants_count, linked_chat_id=linked_chat_id)
        self.messages.setdefault(channel.id, {})
        return channel

    def add_user(self, user: types.User, *, about: str | None = None) -> types.User:
        self._add_entity(user)
        if about is not None:
            self.full_users[user.id] = about
        return user

    def add_chat(self, chat: types.Chat) -> types.Chat:
        return self._add_entity(chat)

    def rename(self, peer_id: int, username: str | None) -> None:
        """Give an entity (by id, as `lookup` reads it) a new username (None: make it private)."""
        entity = self.lookup(peer_id)
        if entity is None:
            raise KeyError(f"no entity {peer_id} in the fake world")
        entity.username = username
        self._add_entity(entity)

    def channel(self, channel_id: int) -> types.Channel:
        found = self.by_id.get(utils.get_peer_id(types.PeerChannel(channel_id)))
        if not isinstance(found, types.Channel):
            raise KeyError(f"no channel {channel_id} in the fake world")
        return found

    def lookup(self, key: Any) -> Entity | None:
        """An entity by marked id, by bare id (users first, as Telethon reads a positive id) or by `Peer`."""
        if isinstance(key, int):
            if key < 0:
                return self.by_id.get(key)
            for peer in (types.PeerUser(key), types.PeerChat(key), types.PeerChannel(key)):
                found = self.by_id.get(utils.get_peer_id(peer))
                if found is not None:
                    return found
            return None
        if isinstance(key, types.PeerUser | types.PeerChat | types.PeerChannel):
            return self.by_id.get(utils.get_peer_id(key))
        return None

    # Messages ------------------------------------------------------------------------------------

    def add_message(self, message: types.Message | types.MessageService) -> Any:
        if not isinstance(message.peer_id, types.PeerChannel):
            raise ValueError("the fake world keeps channel and supergroup histories only")
        self.messages.setdefault(message.peer_id.channel_id, {})[message.id] = message
        return message

    def add_messages(self, messages: Iterable[Any]) -> None:
        for message in messages:
            self.add_message(message)

    def delete(self, channel_id: int, *message_ids: int) -> None:
        """Delete messages as their channel's admin would: asked for by id, they come back as `MessageEmpty`."""
        for message_id in message_ids:
            del self.messages[channel_id][message_id]

    def remove_channel(self, channel_id: int, error: BaseException | None = None) -> None:
        """The channel is gone: deleted by its owner, banned by Telegram or closed to this account.

        Its username is freed (resolving it gives `UsernameNotOccupiedError`, which `get_entity` turns into
        `ValueError`), and every request naming the channel by id (`GetChannelsRequest`, history, messages by
        id, full channel) raises `error`: by default `ChannelPrivateError`, Telegram's answer for a channel
        that was deleted or that this account may no longer see. A session that saw the channel still knows
        its id and access hash, as a real one would.
        """
        channel = self.channel(channel_id)
        if channel.username:
            self.by_username.pop(channel.username.lower(), None)
        self.removed_channels[channel_id] = error if error is not None else errors.ChannelPrivateError(request=None)

    def edit(self, channel_id: int, message_id: int, *, text: str | None = None,
             edit_date: dt.datetime | None = None, **fields: Any) -> Any:
        """Edit a stored message as its author would: new text/fields and an `edit_date`."""
        message = self.messages[channel_id][message_id]
        if text is not None:
            message.message = text
            message.entities = fields.pop("entities", None)
        for name, value in fields.items():
            if not hasattr(message, name):
                raise AttributeError(f"{type(message).__name__} has no field {name!r}")
            setattr(message, name, value)
        message.edit_date = _date(edit_date or dt.datetime.now(UTC))
        return message

    # Scripted trouble ----------------------------------------------------------------------------

    def flood_on(self, method: str | type, after_calls: int = 0, seconds: int = 30) -> FloodRule:
        """One ``FloodWaitError(seconds)`` after `after_calls` successful calls of `method`.

        `method`: "iter_messages" (counts yielded messages: a FloodWait in the middle of a channel),
        "get_entity", "get_input_entity", "download_media", "get_me", or a request class or class name
        (e.g. ``functions.channels.GetFullChannelRequest`` or "GetHistoryRequest").
        """
        if isinstance(method, type):
            rule = FloodRule(method.__name__, after_calls, seconds, request_type=method)
        elif method in METHOD_KEYS or method.endswith("Request"):
            rule = FloodRule(method, after_calls, seconds)
        else:
            raise ValueError(f"unknown flood target {method!r}")
        self.floods.append(rule)
        return rule

    def _due_flood(self, key: str, request_type: type | None = None) -> FloodRule | None:
        due = None
        for rule in self.floods:
            if rule.fired or not rule.matches(key, request_type):
                continue
            if rule.count >= rule.after_calls and due is None:
                rule.fired = True
                due = rule
            elif rule.count < rule.after_calls:
                rule.count += 1
        return due

    def fail_username(self, username: str, error: BaseException, *, times: int | None = None) -> None:
        """Resolving `username` raises `error` (every time, or `times` times)."""
        self.username_failures[username.lstrip("@").lower()] = _Failure(error, times)

    def fail_channel(self, channel_id: int, error: BaseException, *, times: int | None = None) -> None:
        """History, message and full-channel requests for the channel raise `error`."""
        self.channel_failures[channel_id] = _Failure(error, times)

    def fail_download(self, file_id: int, error: BaseException, *, times: int | None = None) -> None:
        """Downloading any size of the photo or document `file_id` raises `error`."""
        self.download_failures[file_id] = _Failure(error, times)


# --------------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------------

@functools.cache
def _init_params(cls: type) -> tuple[str, ...]:
    return tuple(p for p in inspect.signature(cls.__init__).parameters if p != "self")


def _fresh(message: Any) -> Any:
    """A new, unfinished copy of a stored message, so callers never share state with the world."""
    cls = type(message)
    return cls(**{p: copy.deepcopy(getattr(message, p, None)) for p in _init_params(cls)})


async def _fake_anext(self: Any, base: type) -> Any:
    """Telethon's own message iterators, with scripted FloodWaits between messages."""
    token = _INSIDE.set(True)
    try:
        item = await base.__anext__(self)
    finally:
        _INSIDE.reset(token)
    self.client._fake_flood("iter_messages", request=getattr(self, "request", None))
    return item


class _FakeMessagesIter(_MessagesIter):
    async def __anext__(self) -> Any:
        return await _fake_anext(self, _MessagesIter)


class _FakeIDsIter(_IDsIter):
    async def __anext__(self) -> Any:
        return await _fake_anext(self, _IDsIter)


_FAKE_ITERS = {_MessagesIter: _FakeMessagesIter, _IDsIter: _FakeIDsIter}


def _forbidden_method(name: str) -> Any:
    def method(self: FakeTelegramClient, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((name, {"args": args, "kwargs": kwargs}))
        raise AssertionError(f"forbidden: {name} (the collector only reads public channels)")

    method.__name__ = method.__qualname__ = name
    return method


def _unsupported_method(name: str, hint: str) -> Any:
    def method(self: FakeTelegramClient, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"FakeTelegramClient.{name} is not supported: {hint}")

    method.__name__ = method.__qualname__ = name
    return method


class FakeTelegramClient(TelegramClient):
    """A genuine `TelegramClient` that answers from a `FakeWorld` and never touches the network."""

    FORBIDDEN: ClassVar[frozenset[str]] = frozenset({
        "send_message", "send_file", "send_read_acknowledge", "forward_messages", "edit_message",
        "delete_messages", "pin_message", "unpin_message", "join_channel", "delete_dialog", "edit_admin",
        "edit_permissions", "kick_participant", "edit_folder", "upload_file", "sign_in", "sign_up",
        "send_code_request", "log_out", "qr_login", "edit_2fa", "takeout", "end_takeout", "action",
        "inline_query", "run_until_disconnected",
    })
    FORBIDDEN_REQUESTS: ClassVar[frozenset[type]] = frozenset({
        functions.channels.JoinChannelRequest, functions.channels.LeaveChannelRequest,
        functions.messages.ImportChatInviteRequest, functions.messages.ReadHistoryRequest,
        functions.channels.ReadHistoryRequest, functions.messages.ReadMessageContentsRequest,
        functions.channels.ReadMessageContentsRequest,
        functions.messages.SendMessageRequest, functions.messages.SendMediaRequest,
        functions.messages.SendMultiMediaRequest, functions.messages.ForwardMessagesRequest,
        functions.messages.EditMessageRequest, functions.messages.DeleteMessagesRequest,
        functions.channels.DeleteMessagesRequest, functions.messages.SendReactionRequest,
        functions.messages.ReportRequest, functions.account.UpdateStatusRequest,
        functions.messages.StartBotRequest,
    })
    # Requests the fake server answers: request type -> handler name.
    HANDLERS: ClassVar[dict[type, str]] = {
        functions.contacts.ResolveUsernameRequest: "_serve_resolve_username",
        functions.channels.GetChannelsRequest: "_serve_get_channels",
        functions.users.GetUsersRequest: "_serve_get_users",
        functions.messages.GetChatsRequest: "_serve_get_chats",
        functions.channels.GetFullChannelRequest: "_serve_full_channel",
        functions.users.GetFullUserRequest: "_serve_full_user",
        functions.messages.GetHistoryRequest: "_serve_history",
        functions.channels.GetMessagesRequest: "_serve_channel_messages",
        functions.messages.GetMessagesRequest: "_serve_messages",
    }

    def __init__(self, world: FakeWorld, session: Any = None, **client_kwargs: Any) -> None:
        client_kwargs.setdefault("receive_updates", False)
        super().__init__(session if session is not None else StringSession(), api_id=1, api_hash="0" * 32,
                         **client_kwargs)
        self.world = world
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.requests: list[type] = []
        self._fake_connected = False
        self._fake_flood_until: dict[type, float] = {}
        me = world.me
        self._mb_entity_cache.set_self_user(me.id, bool(me.bot), me.access_hash)

    # Bookkeeping ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _fake_entry(self, name: str, details: dict[str, Any] | None = None) -> Iterator[bool]:
        """Log a call made by the code under test (not by Telethon internally); yield whether it was."""
        outer = not _INSIDE.get()
        if outer:
            self.calls.append((name, details or {}))
        token = _INSIDE.set(True)
        try:
            yield outer
        finally:
            _INSIDE.reset(token)

    def _fake_sleep(self, method: str, seconds: int) -> None:
        self.calls.append(("flood_sleep", {"method": method, "seconds": seconds}))
        self.world.advance(seconds)

    def _fake_flood_memory(self, request_type: type, request: Any = None) -> None:
        """Telethon refuses a request type client-side while an earlier FloodWait for it lasts."""
        due = self._fake_flood_until.get(request_type)
        if due is None or not self.world.realistic_floods:
            return
        diff = round(due - self.world.now())
        if diff <= 3:
            del self._fake_flood_until[request_type]
        elif diff <= self.flood_sleep_threshold:
            self._fake_sleep(request_type.__name__, diff)
            del self._fake_flood_until[request_type]
        else:
            raise errors.FloodWaitError(request=request, capture=diff)

    def _fake_flood(self, key: str, *, request: Any = None, request_type: type | None = None) -> None:
        rule = self.world._due_flood(key, request_type)
        if rule is None:
            return
        if self.world.realistic_floods:
            if rule.seconds <= self.flood_sleep_threshold:
                self._fake_sleep(rule.method, rule.seconds)
                return
            self._fake_flood_until[request_type or _FLOOD_REQUEST[key]] = self.world.now() + rule.seconds
        raise errors.FloodWaitError(request=request, capture=rule.seconds)

    def _fake_require_connection(self) -> None:
        if not self._fake_connected:
            raise ConnectionError("Cannot send requests while disconnected")

    # Connection and account ----------------------------------------------------------------------

    async def connect(self) -> None:
        with self._fake_entry("connect"):
            self._fake_connected = True

    def is_connected(self) -> bool:
        with self._fake_entry("is_connected"):
            return self._fake_connected

    def disconnect(self) -> Any:
        """Like Telethon's: disconnects at once and returns an awaitable when a loop is running."""
        with self._fake_entry("disconnect"):
            self._fake_connected = False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        done = loop.create_future()
        done.set_result(None)
        return done

    def start(self, phone: Any = None, password: Any = None, *, bot_token: str | None = None,
              force_sms: bool = False, code_callback: Any = None, first_name: str = "New User",
              last_name: str = "", max_attempts: int = 3) -> Any:
        """Connects and returns the client (the session is always authorised); awaitable, as Telethon's."""
        details = {"bot_token": bot_token} if bot_token else {}

        async def _start() -> FakeTelegramClient:
            with self._fake_entry("start", details):
                await self.connect()
            return self

        return _start()

    async def get_me(self, input_peer: bool = False) -> Any:
        with self._fake_entry("get_me", {"input_peer": input_peer} if input_peer else {}) as outer:
            if outer:
                self._fake_flood("get_me")
            if input_peer:
                return utils.get_input_peer(self.world.me, allow_self=False)
            return (await self(functions.users.GetUsersRequest([types.InputUserSelf()])))[0]

    async def is_user_authorized(self) -> bool:
        with self._fake_entry("is_user_authorized"):
            return True

    async def is_bot(self) -> bool:
        with self._fake_entry("is_bot"):
            return bool(self.world.me.bot)

    # Entities ------------------------------------------------------------------------------------

    async def get_entity(self, entity: Any) -> Any:
        with self._fake_entry("get_entity", {"entity": entity}) as outer:
            if outer:
                self._fake_flood("get_entity")
            single = not utils.is_list_like(entity)
            items = [entity] if single else list(entity)
            result = [await self._fake_one_entity(item) for item in items]
            return result[0] if single else result

    async def _fake_one_entity(self, item: Any) -> Any:
        if isinstance(item, str):
            return await self._fake_entity_from_string(item)
        peer = await self.get_input_entity(item)
        if isinstance(peer, types.InputPeerSelf):
            return await self.get_me()
        if isinstance(peer, types.InputPeerChannel):
            request = functions.channels.GetChannelsRequest([types.InputChannel(peer.channel_id, peer.access_hash)])
            return (await self(request)).chats[0]
        if isinstance(peer, types.InputPeerUser):
            user = (await self(functions.users.GetUsersRequest([types.InputUser(peer.user_id, peer.access_hash)])))[0]
            if isinstance(user, types.UserEmpty):
                raise ValueError(f"Could not find the entity for {item!r}")
            return user
        if isinstance(peer, types.InputPeerChat):
            return (await self(functions.messages.GetChatsRequest([peer.chat_id]))).chats[0]
        raise TypeError(f"Cannot cast {type(item).__name__} to any kind of Peer.")

    async def _fake_entity_from_string(self, string: str) -> Any:
        """Telethon's `_get_entity_from_string`, minus phone numbers and invite links."""
        if utils.parse_phone(string):
            raise AssertionError(f"FakeTelegramClient does not look up phone numbers ({string!r})")
        if string.lower() in ("me", "self"):
            return await self.get_me()
        username, is_invite = utils.parse_username(string)
        if is_invite:
            raise AssertionError(f"FakeTelegramClient does not follow invite links ({string!r})")
        if username:
            try:
                result = await self(functions.contacts.ResolveUsernameRequest(username))
            except errors.UsernameNotOccupiedError as e:
                raise ValueError(f'No user has "{username}" as username') from e
            pid = utils.get_peer_id(result.peer, add_mark=False)
            pool = result.users if isinstance(result.peer, types.PeerUser) else result.chats
            found = next((x for x in pool if x.id == pid), None)
            if found is not None:
                return found
        raise ValueError(f'Cannot find any entity corresponding to "{string}"')

    async def get_input_entity(self, peer: Any) -> Any:
        with self._fake_entry("get_input_entity", {"peer": peer}) as outer:
            if outer:
                self._fake_flood("get_input_entity")
            with contextlib.suppress(TypeError):
                return utils.get_input_peer(peer)
            if isinstance(peer, str) and peer.lower() in ("me", "self"):
                return types.InputPeerSelf()
            # What the session has seen (usernames go stale here exactly as in the real client)...
            with contextlib.suppress(ValueError, TypeError):
                return self.session.get_input_entity(peer)
            # ...and, unlike the real client, every id in the world counts as cached.
            if isinstance(peer, int) or getattr(peer, "SUBCLASS_OF_ID", None) == 0x2D45687:  # crc32(b"Peer")
                found = self.world.lookup(peer)
                if found is not None:
                    return utils.get_input_peer(found)
            if isinstance(peer, str):
                return utils.get_input_peer(await self._fake_entity_from_string(peer))
            raise ValueError(f"Could not find the input entity for {peer!r} ({type(peer).__name__}). Please read "
                             "https://docs.telethon.dev/en/stable/concepts/entities.html to find out more details.")

    # Messages ------------------------------------------------------------------------------------

    def iter_messages(self, entity: Any, limit: float | None = None, *, offset_date: Any = None, offset_id: int = 0,
                      max_id: int = 0, min_id: int = 0, add_offset: int = 0, search: str | None = None,
                      filter: Any = None, from_user: Any = None, wait_time: float | None = None, ids: Any = None,
                      reverse: bool = False, reply_to: int | None = None, scheduled: bool = False) -> Any:
        """Telethon's iterator over the fake server (``wait_time`` defaults to 0: nothing sleeps)."""
        given = {"offset_date": offset_date, "offset_id": offset_id, "max_id": max_id, "min_id": min_id,
                 "add_offset": add_offset, "search": search, "filter": filter, "from_user": from_user,
                 "wait_time": wait_time, "ids": ids, "reverse": reverse, "reply_to": reply_to, "scheduled": scheduled}
        details = {"entity": entity, "limit": limit, **{k: v for k, v in given.items() if v}}
        with self._fake_entry("iter_messages", details):
            it = super().iter_messages(
                entity, limit, offset_date=offset_date, offset_id=offset_id, max_id=max_id, min_id=min_id,
                add_offset=add_offset, search=search, filter=filter, from_user=from_user,
                wait_time=0 if wait_time is None else wait_time, ids=ids, reverse=reverse, reply_to=reply_to,
                scheduled=scheduled)
        it.__class__ = _FAKE_ITERS[type(it)]
        return it

    async def get_messages(self, *args: Any, **kwargs: Any) -> Any:
        with self._fake_entry("get_messages", {"args": args, **kwargs}):
            return await super().get_messages(*args, **kwargs)

    get_messages.__signature__ = inspect.signature(TelegramClient.get_messages)  # type: ignore[attr-defined]

    # Downloads -----------------------------------------------------------------------------------

    async def download_media(self, message: Any, file: Any = None, *, thumb: Any = None,
                             progress_callback: Any = None) -> Any:
        """Telethon's `download_media` (thumb selection and all), into memory only."""
        details = {"message": getattr(message, "id", message), "file": file, "thumb": thumb}
        with self._fake_entry("download_media", details) as outer:
            if file is not bytes:
                raise AssertionError(f"download_media(file={file!r}): the fake only downloads into memory "
                                     "(file=bytes); anything else would write to disk")
            if outer:
                self._fake_flood("download_media")
            return await super().download_media(message, file, thumb=thumb, progress_callback=progress_callback)

    async def download_file(self, input_location: Any, file: Any = None, *, part_size_kb: float | None = None,
                            file_size: int | None = None, progress_callback: Any = None, dc_id: int | None = None,
                            key: bytes | None = None, iv: bytes | None = None) -> Any:
        if not _INSIDE.get():
            raise AssertionError("FakeTelegramClient.download_file is not supported: use "
                                 "download_media(message, file=bytes)")
        return await self._download_file(input_location, file, file_size=file_size,
                                         progress_callback=progress_callback)

    async def _download_file(self, input_location: Any, file: Any = None, *, part_size_kb: float | None = None,
                             file_size: int | None = None, progress_callback: Any = None, dc_id: int | None = None,
                             key: bytes | None = None, iv: bytes | None = None, msg_data: Any = None,
                             cdn_redirect: Any = None) -> Any:
        if not _INSIDE.get():
            raise AssertionError("FakeTelegramClient._download_file is internal: use download_media(file=bytes)")
        if file is not bytes:
            raise AssertionError(f"download to {file!r}: the fake only downloads into memory (file=bytes)")
        if isinstance(input_location, types.InputPhotoFileLocation):
            store_key = ("photo", input_location.id, input_location.thumb_size)
        elif isinstance(input_location, types.InputDocumentFileLocation):
            store_key = ("document", input_location.id, input_location.thumb_size)
        else:
            raise AssertionError(f"FakeTelegramClient cannot download {type(input_location).__name__}")
        self.requests.append(functions.upload.GetFileRequest)
        self._fake_require_connection()
        self._fake_flood_memory(functions.upload.GetFileRequest)
        self._fake_flood("GetFileRequest", request_type=functions.upload.GetFileRequest)
        error = _take(self.world.download_failures, input_location.id)
        if error is not None:
            raise error
        data = MEDIA_BYTES.get(store_key)
        if data is None:
            raise AssertionError(f"no bytes registered for {store_key} (build media with the factories in "
                                 "tests/telegram_fake.py)")
        if progress_callback is not None:
            result = progress_callback(len(data), file_size or len(data))
            if inspect.isawaitable(result):
                await result
        return data

    # The server ----------------------------------------------------------------------------------

    async def __call__(self, request: Any, ordered: bool = False, flood_sleep_threshold: int | None = None) -> Any:
        many = utils.is_list_like(request)
        batch = list(request) if many else [request]
        names = [type(r).__name__ for r in batch]
        with self._fake_entry("__call__", {"request": names if many else names[0]}):
            results = [await self._fake_serve(r) for r in batch]
        return results if many else results[0]

    async def _fake_serve(self, request: Any) -> Any:
        if not isinstance(request, TLRequest):
            raise TypeError("You can only invoke requests, not types!")
        kind = type(request)
        self.requests.append(kind)
        if kind in self.FORBIDDEN_REQUESTS or (kind is functions.messages.GetMessagesViewsRequest
                                               and request.increment):  # that one counts a view
            raise AssertionError(f"forbidden: {kind.__module__.rsplit('.', 1)[-1]}.{kind.__name__}")
        handler = self.HANDLERS.get(kind)
        if handler is None:
            raise AssertionError(f"FakeTelegramClient does not support {kind.__module__.rsplit('.', 1)[-1]}."
                                 f"{kind.__name__}: the code under test sent a request nobody expected")
        self._fake_require_connection()
        await request.resolve(self, utils)
        self._fake_flood_memory(kind, request)
        self._fake_flood(kind.__name__, request=request, request_type=kind)
        result = getattr(self, handler)(request)
        self.session.process_entities(result)
        return result

    def _fake_channel(self, peer: Any, request: Any) -> types.Channel:
        if not isinstance(peer, types.InputPeerChannel | types.InputChannel):
            raise errors.ChannelInvalidError(request=request)
        removed = self.world.removed_channels.get(peer.channel_id)
        if removed is not None:
            raise removed
        found = self.world.lookup(types.PeerChannel(peer.channel_id))
        if not isinstance(found, types.Channel) or found.access_hash != peer.access_hash:
            raise errors.ChannelInvalidError(request=request)
        return found

    def _fake_readable_channel(self, peer: Any, request: Any) -> types.Channel:
        channel = self._fake_channel(peer, request)
        error = _take(self.world.channel_failures, channel.id)
        if error is not None:
            raise error
        return channel

    def _fake_related(self, channel: types.Channel, messages: list[Any]) -> tuple[list[Any], list[Any]]:
        """The chats and users a response carries along with `messages` (copies)."""
        chats = {channel.id: channel}
        users = {}
        for message in messages:
            peers = [getattr(message, "from_id", None)]
            fwd = getattr(message, "fwd_from", None)
            if fwd is not None:
                peers.append(fwd.from_id)
            for peer in peers:
                found = self.world.lookup(peer) if peer is not None else None
                if isinstance(found, types.User):
                    users[found.id] = found
                elif found is not None:
                    chats[found.id] = found
        return copy.deepcopy(list(chats.values())), copy.deepcopy(list(users.values()))

    def _serve_resolve_username(self, request: Any) -> Any:
        name = request.username.lstrip("@").lower()
        error = _take(self.world.username_failures, name)
        if error is not None:
            raise error
        found = self.world.by_username.get(name)
        if found is None:
            raise errors.UsernameNotOccupiedError(request=request)
        found = copy.deepcopy(found)
        is_user = isinstance(found, types.User)
        return types.contacts.ResolvedPeer(peer=utils.get_peer(found), chats=[] if is_user else [found],
                                           users=[found] if is_user else [])

    def _serve_get_channels(self, request: Any) -> Any:
        return types.messages.Chats(chats=[copy.deepcopy(self._fake_channel(c, request)) for c in request.id])

    def _serve_get_users(self, request: Any) -> Any:
        out = []
        for user in request.id:
            if isinstance(user, types.InputUserSelf):
                out.append(copy.deepcopy(self.world.me))
                continue
            found = self.world.lookup(types.PeerUser(getattr(user, "user_id", 0)))
            if isinstance(found, types.User) and found.access_hash == user.access_hash:
                out.append(copy.deepcopy(found))
            else:
                out.append(types.UserEmpty(id=getattr(user, "user_id", 0)))
        return out

    def _serve_get_chats(self, request: Any) -> Any:
        chats = []
        for chat_id in request.id:
            found = self.world.lookup(types.PeerChat(chat_id))
            if not isinstance(found, types.Chat):
                raise errors.PeerIdInvalidError(request=request)
            chats.append(copy.deepcopy(found))
        return types.messages.Chats(chats=chats)

    def _serve_full_channel(self, request: Any) -> Any:
        channel = self._fake_readable_channel(request.channel, request)
        full = copy.deepcopy(self.world.full_channels.get(channel.id) or make_full_channel(channel))
        chats = [copy.deepcopy(channel)]
        linked = full.full_chat.linked_chat_id
        linked_channel = self.world.lookup(types.PeerChannel(linked)) if linked else None
        if linked_channel is not None:
            chats.append(copy.deepcopy(linked_channel))
        full.chats = chats
        return full

    def _serve_full_user(self, request: Any) -> Any:
        if isinstance(request.id, types.InputUserSelf):
            user = self.world.me
        else:
            user = self.world.lookup(types.PeerUser(request.id.user_id))
            if not isinstance(user, types.User) or user.access_hash != request.id.access_hash:
                raise errors.UserIdInvalidError(request=request)
        full = types.UserFull(id=user.id, settings=types.PeerSettings(), notify_settings=types.PeerNotifySettings(),
                              common_chats_count=0, about=self.world.full_users.get(user.id))
        return types.users.UserFull(full_user=full, chats=[], users=[copy.deepcopy(user)])

    def _serve_history(self, request: Any) -> Any:
        """messages.getHistory as Telegram pages it (see https://core.telegram.org/api/offsets).

        Newest first; the page starts at the number of messages with an id >= offset_id (or a date
        >= offset_date) plus add_offset, holds `limit` messages (at most 100), and keeps only ids in
        (min_id, max_id).
        """
        if not isinstance(request.peer, types.InputPeerChannel):
            return types.messages.Messages(messages=[], chats=[], users=[])
        channel = self._fake_readable_channel(request.peer, request)
        history = sorted(self.world.messages.get(channel.id, {}).values(), key=lambda m: m.id, reverse=True)
        if request.offset_id:
            start = sum(1 for m in history if m.id >= request.offset_id)
        elif _timestamp(request.offset_date):
            cutoff = _timestamp(request.offset_date)
            start = sum(1 for m in history if _timestamp(m.date) >= cutoff)
        else:
            start = 0
        start += request.add_offset
        limit = min(request.limit, 100) if request.limit > 0 else 20
        page = history[max(start, 0):max(start + limit, 0)]
        page = [m for m in page if (not request.max_id or m.id < request.max_id)
                and (not request.min_id or m.id > request.min_id)]
        messages = [_fresh(m) for m in page]
        chats, users = self._fake_related(channel, messages)
        return types.messages.ChannelMessages(pts=max((m.id for m in history), default=1), count=len(history),
                                              messages=messages, topics=[], chats=chats, users=users)

    def _serve_channel_messages(self, request: Any) -> Any:
        channel = self._fake_readable_channel(request.channel, request)
        stored = self.world.messages.get(channel.id, {})
        messages = []
        for wanted in request.id:
            if isinstance(wanted, types.InputMessageID):
                found = stored.get(wanted.id)
                messages.append(_fresh(found) if found is not None
                                else types.MessageEmpty(id=wanted.id, peer_id=types.PeerChannel(channel.id)))
            elif isinstance(wanted, types.InputMessageReplyTo):
                source = stored.get(wanted.id)
                target = getattr(getattr(source, "reply_to", None), "reply_to_msg_id", None)
                if target in stored:  # Telegram leaves out what it cannot find here
                    messages.append(_fresh(stored[target]))
            else:
                raise AssertionError(f"FakeTelegramClient does not support {type(wanted).__name__} ids")
        chats, users = self._fake_related(channel, messages)
        return types.messages.ChannelMessages(pts=max(stored, default=1), count=len(messages), messages=messages,
                                              topics=[], chats=chats, users=users)

    def _serve_messages(self, request: Any) -> Any:
        # Private chats and basic groups: the fake world keeps no such history.
        return types.messages.Messages(messages=[types.MessageEmpty(id=getattr(i, "id", 0)) for i in request.id],
                                       chats=[], users=[])

    # Paths that would reach the network ----------------------------------------------------------

    iter_download = _unsupported_method("iter_download", "use download_media(message, file=bytes)")
    _iter_download = _unsupported_method("_iter_download", "use download_media(message, file=bytes)")
    _call = _unsupported_method("_call", "this path would reach the network")
    _switch_dc = _unsupported_method("_switch_dc", "this path would reach the network")
    _borrow_exported_sender = _unsupported_method("_borrow_exported_sender", "this path would reach the network")
    _create_exported_sender = _unsupported_method("_create_exported_sender", "this path would reach the network")


for _name in FakeTelegramClient.FORBIDDEN:
    setattr(FakeTelegramClient, _name, _forbidden_method(_name))
del _name


# --------------------------------------------------------------------------------------------------
# A demo world
# --------------------------------------------------------------------------------------------------

DEMO_CHANNEL_ID = 1888000001  # @fake_news_demo, a public broadcast channel
DEMO_GROUP_ID = 1888000002  # @fake_group_demo, a public supergroup (the channel's discussion group)
DEMO_PRIVATE_ID = 1888000003  # a private channel without a username, reachable by id
DEMO_SOURCE_ID = 1888000004  # @fake_source_demo, where the forwarded post comes from
DEMO_CHAT_ID = 4000001  # a basic group
DEMO_USER_ID = 1999000001  # @demo_user
DEMO_BOT_ID = 1999000002  # @demo_helper_bot
DEMO_ALBUM_GROUPED_ID = 13800000000000001

# Message ids in @fake_news_demo by role. Ids run 1..41; 30 is missing (deleted before the demo starts).
DEMO_MESSAGES: dict[str, Any] = {
    "created": 1, "hashtag": 2, "url": 3, "text_url": 4, "mention": 5, "photo": 6, "album": (7, 8, 9),
    "video": 10, "animation": 11, "sticker": 12, "document": 13, "forward": 14, "reply": 15, "edited": 16,
    "title_changed": 17, "geo": 18, "webpage": 19, "emoji_entities": 20, "gap": 30, "last": 41,
}
DEMO_START = utc(2024, 5, 1, 6)


@functools.cache
def _demo_media() -> dict[str, Any]:
    """The demo's media bytes, made once per process."""
    return {
        "photo": jpeg_sizes(60), "photo_stripped": stripped_thumb(60),
        "album": [jpeg_sizes(seed) for seed in (71, 72, 73)],
        "video": media_factory.mp4(seconds=2, size=(160, 120), fps=10), "video_thumb": frame_jpeg(0),
        "animation": media_factory.mp4(seconds=1.5, size=(120, 90), fps=10),
        "animation_thumb": frame_jpeg(5, (120, 90)),
        "sticker": media_factory.webp(12, (512, 512)),
        "document": media_factory.pdf_like(),
    }


def _demo_news(media: dict[str, Any]) -> list[Any]:
    cid = DEMO_CHANNEL_ID
    ids = DEMO_MESSAGES

    def at(message_id: int) -> dt.datetime:  # one post about every three hours
        return DEMO_START + dt.timedelta(hours=3 * (message_id - 1), minutes=7 * (message_id % 5))

    def stats(message_id: int) -> dict[str, Any]:
        age = 42 - message_id
        return {"views": 150 + 37 * age, "forwards": age // 4}

    out: list[Any] = [make_service_message(cid, 1, at(1), types.MessageActionChannelCreate(title="Fake News Demo"))]

    text = "Welcome to the demo channel. Follow #demo for updates."
    out.append(make_message(cid, ids["hashtag"], at(2), text, entities=[entity(types.MessageEntityHashtag, text,
                                                                                "#demo")], **stats(2)))
    text = "Read the full report at https://example.org/report today."
    out.append(make_message(cid, ids["url"], at(3), text, entities=[entity(types.MessageEntityUrl, text,
                                                                            "https://example.org/report")],
                            replies=4, reactions=[("👍", 12), ("❤", 3)], **stats(3)))
    text = "The full story is here, with sources."
    out.append(make_message(cid, ids["text_url"], at(4), text, entities=[
        entity(types.MessageEntityTextUrl, text, "full story", url="https://example.com/story"),
        entity(types.MessageEntityBold, text, "sources")], **stats(4)))
    text = "Thanks to @fake_source_demo for the tip."
    out.append(make_message(cid, ids["mention"], at(5), text, entities=[entity(types.MessageEntityMention, text,
                                                                                "@fake_source_demo")], **stats(5)))
    out.append(make_message(cid, ids["photo"], at(6), "A picture of the day.", media=photo_media(
        600001, media["photo"], stripped=media["photo_stripped"], progressive=True, date=at(6)),
        reactions=[("🔥", 7)], **stats(6)))
    for index, message_id in enumerate(ids["album"]):
        album_photo = photo_media(700001 + index, media["album"][index], date=at(7))
        out.append(make_message(cid, message_id, at(7), "Three views of the same place." if index == 0 else "",
                                grouped_id=DEMO_ALBUM_GROUPED_ID, media=album_photo, **stats(7)))
    out.append(make_message(cid, ids["video"], at(10), "Short clip.", media=video_media(
        1000001, media["video"], 160, 120, 2.0, thumb=media["video_thumb"]), replies=2, **stats(10)))
    out.append(make_message(cid, ids["animation"], at(11), "", media=animation_media(
        1100001, media["animation"], 120, 90, 1.5, thumb=media["animation_thumb"]), **stats(11)))
    out.append(make_message(cid, ids["sticker"], at(12), "", media=sticker_media(1200001, media["sticker"]),
                            **stats(12)))
    out.append(make_message(cid, ids["document"], at(13), "The report as a file.", media=file_media(
        1300001, media["document"], "application/pdf", "report.pdf"), **stats(13)))
    out.append(make_message(cid, ids["forward"], at(14), "Breaking from our friends at the source channel.",
                            fwd_from=(DEMO_SOURCE_ID, 77, None), **stats(14)))
    out.append(make_message(cid, ids["reply"], at(15), "Update to the report above.",
                            reply_to_msg_id=ids["url"], post_author="Desk Editor", **stats(15)))
    out.append(make_message(cid, ids["edited"], at(16), "Corrected: the meeting is on Friday.",
                            edit_date=at(16) + dt.timedelta(minutes=25), **stats(16)))
    out.append(make_service_message(cid, ids["title_changed"], at(17),
                                    types.MessageActionChatEditTitle(title="Fake News Demo")))
    out.append(make_message(cid, ids["geo"], at(18), "", media=unsupported_media("geo"), **stats(18)))
    text = "Link preview: https://example.org/"
    out.append(make_message(cid, ids["webpage"], at(19), text, media=unsupported_media("webpage"),
                            entities=[entity(types.MessageEntityUrl, text, "https://example.org/")], **stats(19)))
    text = "🔥 Breaking: #weather update at https://example.net/w 🌧"
    out.append(make_message(cid, ids["emoji_entities"], at(20), text, entities=[
        entity(types.MessageEntityHashtag, text, "#weather"),
        entity(types.MessageEntityUrl, text, "https://example.net/w")], reactions=[("😮", 2)], **stats(20)))
    for message_id in range(21, 42):
        if message_id == ids["gap"]:
            continue
        text = f"Daily note {message_id}: nothing unusual to report. #daily"
        out.append(make_message(cid, message_id, at(message_id), text,
                                entities=[entity(types.MessageEntityHashtag, text, "#daily")],
                                reactions=[("👍", message_id % 7 + 1)] if message_id % 3 == 0 else None,
                                **stats(message_id)))
    return out


def demo_world() -> FakeWorld:
    """A small Telegram: one busy public channel and a few neighbours (see the DEMO_* constants)."""
    media = _demo_media()
    world = FakeWorld()
    user = world.add_user(make_user(DEMO_USER_ID, "demo_user", "Dana", "Demo"), about="Just a demo account.")
    world.add_user(make_user(DEMO_BOT_ID, "demo_helper_bot", "Helper", bot=True))
    world.add_channel(make_channel(DEMO_CHANNEL_ID, "fake_news_demo", "Fake News Demo", participants_count=1234,
                                   date=DEMO_START - dt.timedelta(minutes=5)),
                      about="A made-up news channel for tests. Nothing here is real.", linked_chat_id=DEMO_GROUP_ID)
    world.add_channel(make_channel(DEMO_GROUP_ID, "fake_group_demo", "Fake Group Demo", megagroup=True,
                                   participants_count=56, date=DEMO_START),
                      about="Discussion group of @fake_news_demo.", linked_chat_id=DEMO_CHANNEL_ID)
    world.add_channel(make_channel(DEMO_PRIVATE_ID, None, "Private Demo", participants_count=9, date=DEMO_START),
                      about="No username: reachable by id only.")
    world.add_channel(make_channel(DEMO_SOURCE_ID, "fake_source_demo", "Fake Source Demo", participants_count=321,
                                   date=DEMO_START - dt.timedelta(days=30)))
    world.add_chat(make_chat(DEMO_CHAT_ID, "Demo Basic Group", date=DEMO_START))

    world.add_messages(_demo_news(media))
    world.add_message(make_message(DEMO_SOURCE_ID, 77, DEMO_START + dt.timedelta(hours=40), "Original post.",
                                   views=900, forwards=12))
    for message_id, text in enumerate(("First comment.", "Agreed, thanks for posting.", "See you Friday."), 1):
        world.add_message(make_message(DEMO_GROUP_ID, message_id, DEMO_START + dt.timedelta(hours=8 + message_id),
                                       text, post=False, from_user_id=user.id))
    for message_id in (1, 2, 3):
        world.add_message(make_message(DEMO_PRIVATE_ID, message_id, DEMO_START + dt.timedelta(days=message_id),
                                       f"Private note {message_id}.", views=5 + message_id))
    return world
