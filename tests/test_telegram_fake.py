"""The fake Telegram client behaves like Telethon's, with real TL objects and errors, and stays offline."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest
from PIL import Image
from telethon import TelegramClient, errors, helpers, utils
from telethon.tl import functions, types

from tests.telegram_fake import (
    DEMO_BOT_ID,
    DEMO_CHANNEL_ID,
    DEMO_GROUP_ID,
    DEMO_MESSAGES,
    DEMO_PRIVATE_ID,
    DEMO_USER_ID,
    MEDIA_BYTES,
    FakeTelegramClient,
    FakeWorld,
    demo_world,
    make_channel,
    make_message,
    photo_media,
    utc,
)

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(asyncio, "open_connection", refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "sock_connect", refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", refuse)


@pytest.fixture
def world() -> FakeWorld:
    return demo_world()


async def connected(world: FakeWorld) -> FakeTelegramClient:
    client = FakeTelegramClient(world)
    await client.connect()
    return client


def ids(messages: Any) -> list[int | None]:
    return [m.id if m is not None else None for m in messages]


def test_is_a_telegram_client_and_works_offline_with_async_with(world: FakeWorld) -> None:
    async def go() -> None:
        client = FakeTelegramClient(world)
        assert isinstance(client, TelegramClient)
        assert not client.is_connected()
        async with client as entered:
            assert entered is client
            assert client.is_connected()
            me = await client.get_me()
            assert isinstance(me, types.User) and me.is_self
        assert not client.is_connected()
        assert [name for name, _ in client.calls] == ["is_connected", "start", "is_connected", "get_me", "disconnect",
                                                      "is_connected"]

    run(go())


def test_requests_need_a_connection(world: FakeWorld) -> None:
    with pytest.raises(ConnectionError):
        run(FakeTelegramClient(world).get_entity("fake_news_demo"))


def test_objects_are_real_tl_types_and_serialise(world: FakeWorld) -> None:
    async def go() -> None:
        client = await connected(world)
        channel = await client.get_entity("@Fake_News_Demo")
        assert isinstance(channel, types.Channel) and channel.broadcast and channel.id == DEMO_CHANNEL_ID
        messages = await client.get_messages(channel, limit=None)
        assert isinstance(messages, helpers.TotalList) and messages.total == len(messages) == 40
        for message in messages:
            assert isinstance(message, types.Message | types.MessageService)
            assert message.date.tzinfo is not None
            json.dumps(message.to_dict(), default=str)
            json.loads(message.to_json())
        post = next(m for m in messages if m.id == DEMO_MESSAGES["url"])
        assert post.text == post.message and post.chat_id == utils.get_peer_id(channel)
        assert post.chat.username == "fake_news_demo" and post.post and post.sender_id == post.chat_id
        assert post.reactions.results[0].reaction == types.ReactionEmoji("👍") and post.replies.replies == 4
        service = next(m for m in messages if m.id == DEMO_MESSAGES["created"])
        assert isinstance(service.action, types.MessageActionChannelCreate) and service.text is None
        emoji = next(m for m in messages if m.id == DEMO_MESSAGES["emoji_entities"])
        assert [text for _, text in emoji.get_entities_text()] == ["#weather", "https://example.net/w"]
        forward = next(m for m in messages if m.id == DEMO_MESSAGES["forward"])
        assert forward.forward.chat.username == "fake_source_demo" and forward.fwd_from.channel_post == 77
        reply = next(m for m in messages if m.id == DEMO_MESSAGES["reply"])
        assert (await reply.get_reply_message()).id == DEMO_MESSAGES["url"]
        album = [m for m in messages if m.id in DEMO_MESSAGES["album"]]
        assert len({m.grouped_id for m in album}) == 1 and all(m.photo for m in album)
        full = await client(functions.channels.GetFullChannelRequest(channel))
        assert isinstance(full, types.messages.ChatFull) and full.full_chat.linked_chat_id == DEMO_GROUP_ID

    run(go())


def test_iter_messages_order_bounds_and_limit(world: FakeWorld) -> None:
    async def go() -> None:
        client = await connected(world)

        async def read(**kwargs: Any) -> list[int | None]:
            return ids([m async for m in client.iter_messages(DEMO_CHANNEL_ID, **kwargs)])

        newest_first = await read()
        assert newest_first[:3] == [41, 40, 39] and newest_first[-1] == 1 and 30 not in newest_first
        assert await read(reverse=True) == newest_first[::-1]
        assert await read(limit=3) == [41, 40, 39]
        assert await read(min_id=37) == [41, 40, 39, 38]  # exclusive
        assert await read(max_id=4) == [3, 2, 1]  # exclusive
        assert await read(reverse=True, min_id=10, limit=3) == [11, 12, 13]
        assert await read(reverse=True, min_id=10, max_id=14) == [11, 12, 13]
        assert await read(offset_id=11, limit=2) == [10, 9]
        date_11 = world.messages[DEMO_CHANNEL_ID][11].date
        assert await read(offset_date=date_11, limit=2) == [10, 9]  # older than the date
        assert await read(offset_date=date_11, limit=2, reverse=True) == [11, 12]  # from the date on
        assert await read(limit=150) == newest_first  # more than one GetHistory page of 100 is fine too

    run(go())


def test_get_messages_by_id_gives_none_for_deleted_and_copies_are_fresh(world: FakeWorld) -> None:
    async def go() -> None:
        client = await connected(world)
        first = await client.get_messages(DEMO_CHANNEL_ID, ids=[29, 30, 31])
        assert ids(first) == [29, None, 31]
        first[0].message = "changed by the caller"
        world.delete(DEMO_CHANNEL_ID, 31)
        world.edit(DEMO_CHANNEL_ID, 29, text="Edited between runs.", edit_date=utc(2024, 6, 1))
        second = await client.get_messages(DEMO_CHANNEL_ID, ids=[29, 31])
        assert second[1] is None
        assert second[0].text == "Edited between runs." and second[0].edit_date == utc(2024, 6, 1)
        assert world.messages[DEMO_CHANNEL_ID][29].message == "Edited between runs."
        assert await client.get_messages(DEMO_CHANNEL_ID, ids=30) is None

    run(go())


def test_messages_by_id_in_one_request_with_message_empty_on_the_wire(world: FakeWorld) -> None:
    async def go() -> None:
        client = await connected(world)
        channel = await client.get_entity("fake_news_demo")
        client.requests.clear()
        assert ids(await client.get_messages(channel, ids=[41, 30, 2, 999])) == [41, None, 2, None]
        assert client.requests == [functions.channels.GetMessagesRequest]
        raw = await client(functions.channels.GetMessagesRequest(channel, [types.InputMessageID(29),
                                                                           types.InputMessageID(30)]))
        assert [type(m).__name__ for m in raw.messages] == ["Message", "MessageEmpty"]
        world.delete(DEMO_CHANNEL_ID, 29)
        raw = await client(functions.channels.GetMessagesRequest(channel, [types.InputMessageID(29)]))
        assert isinstance(raw.messages[0], types.MessageEmpty) and raw.messages[0].id == 29

    run(go())


def test_a_removed_channel_stops_resolving_and_raises_the_real_error(world: FakeWorld) -> None:
    async def go() -> None:
        client = await connected(world)
        channel = await client.get_entity("fake_news_demo")  # seen before: the session keeps its id and hash
        source = await client.get_entity("fake_source_demo")
        world.remove_channel(DEMO_CHANNEL_ID)
        with pytest.raises(ValueError) as gone:
            await client.get_entity("fake_news_demo")
        assert isinstance(gone.value.__cause__, errors.UsernameNotOccupiedError)
        attempts = (lambda: client.get_entity(types.InputPeerChannel(channel.id, channel.access_hash)),
                    lambda: client.get_entity(DEMO_CHANNEL_ID), lambda: client.get_messages(channel, ids=[2, 3]),
                    lambda: client.get_messages(channel, limit=1),
                    lambda: client(functions.channels.GetFullChannelRequest(channel)))
        for attempt in attempts:
            with pytest.raises(errors.ChannelPrivateError):
                await attempt()
        world.remove_channel(source.id, errors.ChannelInvalidError(request=None))
        with pytest.raises(errors.ChannelInvalidError):
            await client.get_messages(source, ids=[77])
        assert ids(await client.get_messages("fake_group_demo", ids=[1])) == [1]  # the others are untouched
        assert functions.channels.JoinChannelRequest not in client.requests

    run(go())


def test_entities_resolve_like_telethon(world: FakeWorld) -> None:
    async def go() -> None:
        client = await connected(world)
        with pytest.raises(ValueError) as unknown:
            await client.get_entity("nobody_here_demo")
        assert isinstance(unknown.value.__cause__, errors.UsernameNotOccupiedError)  # as the real client does
        assert (await client.get_entity(DEMO_PRIVATE_ID)).username is None
        assert (await client.get_entity(int(f"-100{DEMO_PRIVATE_ID}"))).id == DEMO_PRIVATE_ID
        assert (await client.get_entity(types.PeerChannel(DEMO_GROUP_ID))).megagroup
        assert (await client.get_entity("demo_user")).id == DEMO_USER_ID
        assert (await client.get_entity(DEMO_BOT_ID)).bot
        channel = world.channel(DEMO_CHANNEL_ID)
        assert (await client.get_entity(types.InputPeerChannel(channel.id, channel.access_hash))).id == channel.id
        with pytest.raises(errors.ChannelInvalidError):
            await client.get_entity(types.InputPeerChannel(channel.id, channel.access_hash + 1))
        world.fail_username("fake_group_demo", errors.ChannelPrivateError(request=None), times=1)
        with pytest.raises(errors.ChannelPrivateError):
            await client.get_entity("fake_group_demo")
        assert (await client.get_entity("fake_group_demo")).id == DEMO_GROUP_ID
        world.fail_username("fake_source_demo", TimeoutError())
        with pytest.raises(TimeoutError):
            await client.get_entity("fake_source_demo")
        world.rename(DEMO_CHANNEL_ID, "fake_news_renamed")
        assert (await client.get_entity("fake_news_renamed")).id == DEMO_CHANNEL_ID
        with pytest.raises(ValueError):
            await client.get_entity("fake_news_demo")
        world.fail_channel(DEMO_CHANNEL_ID, errors.ChannelPrivateError(request=None))
        with pytest.raises(errors.ChannelPrivateError):
            await client.get_messages(DEMO_CHANNEL_ID, limit=5)

    run(go())


def test_download_media_whole_largest_and_thumbs(world: FakeWorld) -> None:
    async def go() -> None:
        client = await connected(world)
        album = await client.get_messages(DEMO_CHANNEL_ID, ids=DEMO_MESSAGES["album"][0])
        photo_id = album.photo.id
        assert await client.download_media(album, file=bytes) == MEDIA_BYTES[("photo", photo_id, "y")]
        assert await client.download_media(album, file=bytes, thumb="m") == MEDIA_BYTES[("photo", photo_id, "m")]
        assert await client.download_media(album, file=bytes, thumb=0) == MEDIA_BYTES[("photo", photo_id, "m")]
        size_x = next(s for s in album.photo.sizes if s.type == "x")
        assert await client.download_media(album, file=bytes, thumb=size_x) == MEDIA_BYTES[("photo", photo_id, "x")]
        assert await client.download_media(album, file=bytes, thumb="nope") is None
        assert Image.open(io.BytesIO(await client.download_media(album, file=bytes))).size == (800, 600)

        realistic = await client.get_messages(DEMO_CHANNEL_ID, ids=DEMO_MESSAGES["photo"])
        assert [type(s).__name__ for s in realistic.photo.sizes] == [
            "PhotoStrippedSize", "PhotoSize", "PhotoSize", "PhotoSizeProgressive"]
        stripped = await client.download_media(realistic, file=bytes, thumb="i")
        assert Image.open(io.BytesIO(stripped)).size == (40, 30)
        # Telethon's _get_thumb takes PhotoSize, PhotoCachedSize, PhotoStrippedSize and VideoSize objects but
        # not PhotoSizeProgressive: given one, download_media returns None. Its type string works.
        progressive = realistic.photo.sizes[-1]
        assert await client.download_media(realistic, file=bytes, thumb=progressive) is None
        assert await client.download_media(realistic, file=bytes, thumb=progressive.type) == MEDIA_BYTES[
            ("photo", realistic.photo.id, "y")]

        video = await client.get_messages(DEMO_CHANNEL_ID, ids=DEMO_MESSAGES["video"])
        doc_id = video.document.id
        assert await client.download_media(video, file=bytes) == MEDIA_BYTES[("document", doc_id, "")]
        assert await client.download_media(video, file=bytes, thumb=-1) == MEDIA_BYTES[("document", doc_id, "m")]
        sticker = await client.get_messages(DEMO_CHANNEL_ID, ids=DEMO_MESSAGES["sticker"])
        assert (await client.download_media(sticker, file=bytes))[8:12] == b"WEBP"
        assert await client.download_media(sticker, file=bytes, thumb=0) is None  # no thumbnail
        geo = await client.get_messages(DEMO_CHANNEL_ID, ids=DEMO_MESSAGES["geo"])
        assert await client.download_media(geo, file=bytes) is None
        for target in (None, "/tmp/out.jpg", io.BytesIO()):
            with pytest.raises(AssertionError):
                await client.download_media(video, target)
        with pytest.raises(AssertionError):
            await client.download_file(types.InputDocumentFileLocation(doc_id, 0, b"", ""), bytes)
        with pytest.raises(AssertionError):
            client.iter_download(video.media)
        world.fail_download(doc_id, errors.FileReferenceExpiredError(request=None), times=1)
        with pytest.raises(errors.FileReferenceExpiredError):
            await video.download_media(file=bytes)
        assert await video.download_media(file=bytes) == MEDIA_BYTES[("document", doc_id, "")]

    run(go())


def test_flood_wait_in_the_middle_of_a_channel(world: FakeWorld) -> None:
    async def go() -> None:
        client = await connected(world)
        world.flood_on("iter_messages", after_calls=7, seconds=42)
        seen = []
        with pytest.raises(errors.FloodWaitError) as wait:
            async for message in client.iter_messages(DEMO_CHANNEL_ID, reverse=True):
                seen.append(message.id)
        assert wait.value.seconds == 42 and seen == [1, 2, 3, 4, 5, 6, 7]
        assert len([m async for m in client.iter_messages(DEMO_CHANNEL_ID, min_id=seen[-1], reverse=True)]) == 33

    run(go())


def test_flood_waits_on_calls_and_requests(world: FakeWorld) -> None:
    async def go() -> None:
        client = await connected(world)
        world.flood_on("get_entity", after_calls=1, seconds=5)
        world.flood_on(functions.channels.GetFullChannelRequest, seconds=300)
        world.flood_on("download_media", after_calls=0, seconds=9)
        channel = await client.get_entity("fake_news_demo")
        with pytest.raises(errors.FloodWaitError):
            await client.get_entity("fake_news_demo")
        with pytest.raises(errors.FloodWaitError) as wait:
            await client(functions.channels.GetFullChannelRequest(channel))
        assert wait.value.seconds == 300
        await client(functions.channels.GetFullChannelRequest(channel))  # once only
        video = await client.get_messages(channel, ids=DEMO_MESSAGES["video"])
        with pytest.raises(errors.FloodWaitError):
            await client.download_media(video, file=bytes)
        assert await client.download_media(video, file=bytes)

    run(go())


def test_realistic_flood_waits_sleep_below_the_threshold_and_block_above_it(world: FakeWorld) -> None:
    async def go() -> None:
        world.realistic_floods = True
        client = FakeTelegramClient(world, flood_sleep_threshold=60)
        await client.connect()
        world.flood_on("GetHistoryRequest", seconds=30)
        assert len(await client.get_messages(DEMO_CHANNEL_ID, limit=3)) == 3  # Telethon sleeps through it
        assert ("flood_sleep", {"method": "GetHistoryRequest", "seconds": 30}) in client.calls
        world.flood_on("iter_messages", after_calls=2, seconds=600)
        with pytest.raises(errors.FloodWaitError):
            [m async for m in client.iter_messages(DEMO_CHANNEL_ID)]
        with pytest.raises(errors.FloodWaitError) as again:  # the client remembers the wait...
            await client.get_messages(DEMO_GROUP_ID, limit=1)
        assert 590 <= again.value.seconds <= 600
        world.advance(600)  # ...until it is over
        assert len(await client.get_messages(DEMO_GROUP_ID, limit=1)) == 1

    run(go())


def test_forbidden_and_unexpected_requests_raise(world: FakeWorld) -> None:
    async def go() -> None:
        client = await connected(world)
        channel = await client.get_entity("fake_news_demo")
        for forbidden in (functions.channels.JoinChannelRequest(channel),
                          functions.messages.ImportChatInviteRequest("abcdef"),
                          functions.messages.ReadHistoryRequest(channel, max_id=0),
                          functions.channels.ReadHistoryRequest(channel, max_id=0),
                          functions.messages.SendMessageRequest(channel, "hi")):
            with pytest.raises(AssertionError, match="forbidden"):
                await client(forbidden)
        for name in ("send_message", "send_read_acknowledge", "join_channel", "delete_messages"):
            with pytest.raises(AssertionError, match="forbidden"):
                await getattr(client, name)(channel, "x")
        with pytest.raises(AssertionError, match="GetDialogsRequest"):
            await client.get_dialogs()
        with pytest.raises(AssertionError, match="SearchRequest"):
            await client.get_messages(channel, search="demo")
        assert functions.channels.JoinChannelRequest in client.requests

    run(go())


def test_call_log_lists_the_callers_calls_and_requests_the_wire(world: FakeWorld) -> None:
    async def go() -> None:
        client = await connected(world)
        channel = await client.get_entity("fake_news_demo")
        [m async for m in client.iter_messages(channel, limit=2)]
        assert [name for name, _ in client.calls] == ["connect", "get_entity", "iter_messages"]
        assert client.calls[2][1] == {"entity": channel, "limit": 2}
        assert client.requests == [functions.contacts.ResolveUsernameRequest, functions.messages.GetHistoryRequest]

    run(go())


def test_a_world_built_by_hand() -> None:
    async def go() -> None:
        world = FakeWorld()
        world.add_channel(make_channel(555, "hand_made_demo", "Hand Made"), about="x", participants_count=3)
        sizes = [("m", 4, 3, b"m-bytes"), ("y", 8, 6, b"y-bytes")]
        world.add_message(make_message(555, 1, utc(2024, 1, 2), "hello", media=photo_media(555001, sizes)))
        client = await connected(world)
        message = (await client.get_messages("hand_made_demo"))[0]
        assert message.text == "hello" and await client.download_media(message, file=bytes) == b"y-bytes"
        with pytest.raises(ValueError, match="naive"):
            make_message(555, 2, utc(2024, 1, 2).replace(tzinfo=None))

    run(go())
