"""Removal tracking, collector side: referred messages re-fetched by id against the fake Telegram (real TL
objects, real telethon errors). Nothing is joined or sent, and non-allowlisted channels are never contacted."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from telethon import errors

from chanwatch.settings import AllowlistEntry, Settings, load_settings
from chanwatch.steps import online_check
from chanwatch.steps.online_check import OnlineStatus, OnlineTarget, check_online
from collectors.telegram.credentials import TelegramCredentials
from collectors.telegram.pacing import RateBudget
from processing.errors import BadInputError
from storage.checkpoints import write_checkpoint
from storage.store import Store
from tests.conftest import REPO
from tests.telegram_fake import (
    DEMO_CHANNEL_ID,
    DEMO_GROUP_ID,
    DEMO_SOURCE_ID,
    DEMO_START,
    FakeTelegramClient,
    FakeWorld,
    demo_world,
    make_channel,
    make_message,
)

APPROVED = {"basis": "test fixture", "approved_by": "tests", "approved_at": dt.date(2026, 11, 23)}
NEWS = AllowlistEntry("fake_news_demo", channel_id=DEMO_CHANNEL_ID, **APPROVED)
SOURCE = AllowlistEntry("fake_source_demo", **APPROVED)  # id not recorded in the allowlist
# What the check may ask Telegram, and what the code under test may call on the client.
READ_REQUESTS = {"ResolveUsernameRequest", "GetChannelsRequest", "GetMessagesRequest"}
READ_CALLS = {"connect", "disconnect", "is_connected", "get_entity", "get_input_entity", "get_messages"}
WRITE_REQUEST = re.compile(r"Join|Leave|Import|Send|Forward|Edit|Delete|Read|Report|Update|Start")


def settings_for(root: Path, *entries: AllowlistEntry, requests_per_minute: float = 0) -> Settings:
    settings = load_settings(storage=str(root), environ={})
    telegram = dataclasses.replace(settings.telegram, requests_per_minute=requests_per_minute,
                                   downloads_per_minute=0)
    return dataclasses.replace(settings, allowlist=entries or (NEWS, SOURCE), telegram=telegram)


class Telegram:
    """A client factory on one world that keeps the clients it built (one per run)."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world
        self.clients: list[FakeTelegramClient] = []
        self.credentials: list[TelegramCredentials | None] = []

    def __call__(self, credentials: TelegramCredentials | None, settings: Any) -> FakeTelegramClient:
        self.credentials.append(credentials)
        self.clients.append(FakeTelegramClient(self.world))
        return self.clients[-1]

    @property
    def client(self) -> FakeTelegramClient:
        assert len(self.clients) == 1
        return self.clients[0]

    def assert_only_read(self) -> None:
        """No join, send, read-receipt or other write ever reached the server, and only reading calls were made."""
        for client in self.clients:
            sent = {r.__name__ for r in client.requests}
            assert not any(WRITE_REQUEST.search(name) for name in sent), sent
            assert sent <= READ_REQUESTS, sent
            called = {name for name, _ in client.calls}
            assert called <= READ_CALLS, called
            assert not client.is_connected()

    def channels_asked(self) -> set[Any]:
        """The channels the code under test named in its calls (usernames and entity ids)."""
        asked: set[Any] = set()
        for client in self.clients:
            for name, details in client.calls:
                if name == "get_entity":
                    entity = details["entity"]
                    asked.add(entity.lower() if isinstance(entity, str) else getattr(entity, "channel_id", entity))
                elif name == "get_messages":
                    asked.add(details["args"][0].id)
        return asked


@pytest.fixture
def world() -> FakeWorld:
    return demo_world()


@pytest.fixture
def telegram(world: FakeWorld) -> Telegram:
    return Telegram(world)


def statuses(found: list[OnlineStatus]) -> list[tuple[int, int, str, str | None]]:
    return [(s.target.channel_id, s.target.message_id, s.status, s.detail) for s in found]


def record_checkpoint(root: Path, key: str, world: FakeWorld, channel_id: int) -> None:
    """What `collect` leaves behind for a channel: its id and access hash."""
    channel = world.channel(channel_id)
    write_checkpoint(Store(str(root)), "telegram", key, {"channel_id": channel.id, "access_hash": channel.access_hash,
                                                         "max_message_id": 41})


def test_online_and_deleted_messages_come_back_in_the_input_order(tmp_path: Path, world: FakeWorld,
                                                                  telegram: Telegram,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    world.delete(DEMO_CHANNEL_ID, 40)  # taken down after the referral
    targets = [OnlineTarget(DEMO_CHANNEL_ID, 40, "fake_news_demo"), OnlineTarget(DEMO_SOURCE_ID, 77),
               OnlineTarget(DEMO_CHANNEL_ID, 2, "fake_news_demo"), OnlineTarget(DEMO_CHANNEL_ID, 30),
               OnlineTarget(DEMO_CHANNEL_ID, 41), OnlineTarget(DEMO_CHANNEL_ID, 2, "fake_news_demo"),
               OnlineTarget(DEMO_SOURCE_ID, 78, "fake_source_demo")]  # its name allowlists 77 too
    caplog.set_level(logging.INFO, logger="chanwatch.online_check")
    found = check_online(settings_for(tmp_path), targets, client_factory=telegram)
    assert [s.target for s in found] == targets
    assert statuses(found) == [
        (DEMO_CHANNEL_ID, 40, "deleted", "message not found"), (DEMO_SOURCE_ID, 77, "online", None),
        (DEMO_CHANNEL_ID, 2, "online", None), (DEMO_CHANNEL_ID, 30, "deleted", "message not found"),
        (DEMO_CHANNEL_ID, 41, "online", None), (DEMO_CHANNEL_ID, 2, "online", None),
        (DEMO_SOURCE_ID, 78, "deleted", "message not found")]
    telegram.assert_only_read()
    sent = [r.__name__ for r in telegram.client.requests]
    assert sorted(sent) == ["GetMessagesRequest", "GetMessagesRequest", "ResolveUsernameRequest",
                            "ResolveUsernameRequest"]  # one batch per channel, duplicates asked once
    assert [d["ids"] for n, d in telegram.client.calls if n == "get_messages"] == [[40, 2, 30, 41], [77, 78]]
    done = next(r.getMessage() for r in caplog.records if "event=online_check.done" in r.getMessage())
    for part in ("targets=7", "channels=2", "online=4", "deleted=3", "channel_gone=0", "unknown=0", "requests=4"):
        assert part in done, done
    assert sum("event=online_check.channel" in r.getMessage() for r in caplog.records) == 2


def test_a_removed_channel_is_gone_whether_its_name_or_its_id_is_asked(tmp_path: Path, world: FakeWorld,
                                                                      telegram: Telegram) -> None:
    world.remove_channel(DEMO_CHANNEL_ID)
    targets = [OnlineTarget(DEMO_CHANNEL_ID, 2), OnlineTarget(DEMO_SOURCE_ID, 77, "fake_source_demo"),
               OnlineTarget(DEMO_CHANNEL_ID, 41)]
    found = check_online(settings_for(tmp_path), targets, client_factory=telegram)
    assert statuses(found) == [(DEMO_CHANNEL_ID, 2, "channel_gone", "@fake_news_demo no longer resolves"),
                               (DEMO_SOURCE_ID, 77, "online", None),
                               (DEMO_CHANNEL_ID, 41, "channel_gone", "@fake_news_demo no longer resolves")]
    # With collect's checkpoint the channel is asked for by id too, and Telegram says it is private now.
    record_checkpoint(tmp_path, str(DEMO_CHANNEL_ID), world, DEMO_CHANNEL_ID)
    found = check_online(settings_for(tmp_path), targets, client_factory=telegram)
    assert [s.status for s in found] == ["channel_gone", "online", "channel_gone"]
    assert found[0].detail == "channel is private, deleted or closed to this account (ChannelPrivateError)"
    assert "GetChannelsRequest" in {r.__name__ for r in telegram.clients[-1].requests}
    telegram.assert_only_read()


def test_banned_private_and_no_longer_broadcast_channels_are_gone_a_renamed_one_is_followed(
        tmp_path: Path, world: FakeWorld, telegram: Telegram) -> None:
    banned = world.add_channel(make_channel(1888000010, "banned_demo", "Banned"))
    world.add_message(make_message(banned.id, 1, DEMO_START, "x"))
    world.fail_username("banned_demo", errors.ChannelBannedError(request=None))
    turned = world.add_channel(make_channel(1888000011, "turned_group_demo", "Now a group", megagroup=True))
    entries = (NEWS, SOURCE, AllowlistEntry("banned_demo", channel_id=banned.id, **APPROVED),
               AllowlistEntry("turned_group_demo", channel_id=turned.id, **APPROVED))
    world.rename(DEMO_CHANNEL_ID, "fake_news_renamed")
    record_checkpoint(tmp_path, str(DEMO_CHANNEL_ID), world, DEMO_CHANNEL_ID)
    world.rename(DEMO_SOURCE_ID, None)
    record_checkpoint(tmp_path, "fake_source_demo", world, DEMO_SOURCE_ID)
    targets = [OnlineTarget(banned.id, 1), OnlineTarget(turned.id, 1), OnlineTarget(DEMO_CHANNEL_ID, 41),
               OnlineTarget(DEMO_SOURCE_ID, 77), OnlineTarget(DEMO_CHANNEL_ID, 30)]
    found = check_online(settings_for(tmp_path, *entries), targets, client_factory=telegram)
    assert statuses(found) == [
        (banned.id, 1, "channel_gone", "channel is banned (ChannelBannedError)"),
        (turned.id, 1, "channel_gone", "a group (megagroup), not a public broadcast channel"),
        (DEMO_CHANNEL_ID, 41, "online", None),  # renamed: followed by the id and access hash collect recorded
        (DEMO_SOURCE_ID, 77, "channel_gone", "a private channel (no public username)"),
        (DEMO_CHANNEL_ID, 30, "deleted", "message not found")]
    telegram.assert_only_read()


def test_targets_off_the_allowlist_are_unknown_and_never_contacted(tmp_path: Path, world: FakeWorld,
                                                                   telegram: Telegram) -> None:
    targets = [OnlineTarget(DEMO_GROUP_ID, 1, "fake_group_demo"), OnlineTarget(DEMO_CHANNEL_ID, 41),
               OnlineTarget(DEMO_SOURCE_ID, 77, None),  # SOURCE's id is unknown and no username is given
               OnlineTarget(1888000077, 3, "fake_news_demo")]  # the name is allowlisted for another id
    found = check_online(settings_for(tmp_path), targets, client_factory=telegram)
    assert statuses(found) == [(DEMO_GROUP_ID, 1, "unknown", "not on the allowlist"),
                               (DEMO_CHANNEL_ID, 41, "online", None),
                               (DEMO_SOURCE_ID, 77, "unknown", "not on the allowlist"),
                               (1888000077, 3, "unknown", "not on the allowlist")]
    assert telegram.channels_asked() == {"fake_news_demo", DEMO_CHANNEL_ID}
    telegram.assert_only_read()

    def no_client(*args: Any) -> FakeTelegramClient:
        raise AssertionError("a client was built although nothing is allowlisted")

    found = check_online(settings_for(tmp_path), targets[:1], client_factory=no_client)
    assert statuses(found) == [(DEMO_GROUP_ID, 1, "unknown", "not on the allowlist")]
    assert check_online(settings_for(tmp_path), [], client_factory=no_client) == []


def test_a_channel_is_allowlisted_by_its_username_or_by_the_id_collect_recorded(tmp_path: Path, world: FakeWorld,
                                                                                 telegram: Telegram) -> None:
    found = check_online(settings_for(tmp_path), [OnlineTarget(DEMO_SOURCE_ID, 77, "@Fake_Source_Demo")],
                         client_factory=telegram)
    assert statuses(found) == [(DEMO_SOURCE_ID, 77, "online", None)]
    record_checkpoint(tmp_path, "fake_source_demo", world, DEMO_SOURCE_ID)
    found = check_online(settings_for(tmp_path), [OnlineTarget(DEMO_SOURCE_ID, 77)], client_factory=telegram)
    assert statuses(found) == [(DEMO_SOURCE_ID, 77, "online", None)]
    found = check_online(settings_for(tmp_path), [OnlineTarget(DEMO_SOURCE_ID + 1, 77, "fake_source_demo")],
                         client_factory=telegram)  # the recorded id wins over a matching name
    assert statuses(found) == [(DEMO_SOURCE_ID + 1, 77, "unknown", "not on the allowlist")]


def test_a_username_that_now_belongs_to_another_channel_is_unknown_not_gone(tmp_path: Path, world: FakeWorld,
                                                                            telegram: Telegram) -> None:
    world.rename(DEMO_SOURCE_ID, "fake_source_old")
    world.add_channel(make_channel(1888000020, "fake_source_demo", "Squatter"))
    found = check_online(settings_for(tmp_path), [OnlineTarget(DEMO_SOURCE_ID, 77, "fake_source_demo")],
                         client_factory=telegram)
    assert [s.status for s in found] == ["unknown"]
    assert found[0].detail == "@fake_source_demo now belongs to channel 1888000020, not the allowlisted 1888000004"
    assert "GetMessagesRequest" not in {r.__name__ for r in telegram.client.requests}


def big_channel(world: FakeWorld, channel_id: int = 1888000030, count: int = 250) -> AllowlistEntry:
    world.add_channel(make_channel(channel_id, "big_demo", "Big"))
    world.add_messages(make_message(channel_id, i, DEMO_START + dt.timedelta(minutes=i), f"post {i}")
                       for i in range(1, count + 1) if i % 10)  # every tenth post was taken down
    return AllowlistEntry("big_demo", channel_id=channel_id, **APPROVED)


def test_messages_are_fetched_in_batches_each_paced_by_the_request_budget(tmp_path: Path, world: FakeWorld,
                                                                          telegram: Telegram,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    entry = big_channel(world)
    tokens: list[int] = []
    acquire = RateBudget.acquire

    async def counted(self: RateBudget) -> None:
        tokens.append(len(telegram.clients[-1].requests))  # requests sent so far, when the token is taken
        await acquire(self)

    monkeypatch.setattr(RateBudget, "acquire", counted)
    targets = [OnlineTarget(entry.channel_id, i) for i in range(250, 0, -1)]
    found = check_online(settings_for(tmp_path, entry, requests_per_minute=60_000), targets,
                         client_factory=telegram)
    assert [s.target.message_id for s in found] == list(range(250, 0, -1))
    assert all(s.status == ("deleted" if s.target.message_id % 10 == 0 else "online") for s in found)
    sent = [r.__name__ for r in telegram.client.requests]
    assert sent == ["ResolveUsernameRequest", "GetMessagesRequest", "GetMessagesRequest", "GetMessagesRequest"]
    assert [len(d["ids"]) for n, d in telegram.client.calls if n == "get_messages"] == [100, 100, 50]
    assert tokens == [0, 1, 2, 3]  # a token before every request
    telegram.assert_only_read()


def test_a_flood_wait_leaves_the_rest_of_its_channel_unknown_and_the_others_go_on(
        tmp_path: Path, world: FakeWorld, telegram: Telegram) -> None:
    entry = big_channel(world)
    world.flood_on("GetMessagesRequest", after_calls=1, seconds=900)  # the second batch of big_demo
    targets = [OnlineTarget(entry.channel_id, i) for i in range(1, 251)] + [OnlineTarget(DEMO_CHANNEL_ID, 41)]
    started = dt.datetime.now(dt.UTC)
    found = check_online(settings_for(tmp_path, entry, NEWS), targets, client_factory=telegram)
    assert dt.datetime.now(dt.UTC) - started < dt.timedelta(seconds=30)  # nobody waited the 900 s
    first, rest = found[:100], found[100:250]
    assert {s.status for s in first} == {"online", "deleted"}
    assert {(s.status, s.detail) for s in rest} == {("unknown", "flood wait 900 s")}
    assert (found[-1].status, found[-1].detail) == ("online", None)
    telegram.assert_only_read()


def test_one_failing_channel_never_stops_the_others(tmp_path: Path, world: FakeWorld, telegram: Telegram) -> None:
    slow = world.add_channel(make_channel(1888000040, "slow_demo", "Slow"))
    world.add_message(make_message(slow.id, 5, DEMO_START, "x"))
    invalid = world.add_channel(make_channel(1888000041, "invalid_demo", "Invalid"))
    world.fail_channel(slow.id, TimeoutError("timed out"))
    world.fail_channel(invalid.id, errors.ChannelInvalidError(request=None))
    world.fail_username("fake_source_demo", errors.RPCError(request=None, message="INTERNAL_SERVER_ERROR", code=500))
    entries = (AllowlistEntry("slow_demo", channel_id=slow.id, **APPROVED),
               AllowlistEntry("invalid_demo", channel_id=invalid.id, **APPROVED), NEWS, SOURCE)
    targets = [OnlineTarget(slow.id, 5), OnlineTarget(invalid.id, 1),
               OnlineTarget(DEMO_SOURCE_ID, 77, "fake_source_demo"), OnlineTarget(DEMO_CHANNEL_ID, 41),
               OnlineTarget(DEMO_CHANNEL_ID, 0)]
    found = check_online(settings_for(tmp_path, *entries), targets, client_factory=telegram)
    assert statuses(found) == [(slow.id, 5, "unknown", "TimeoutError"),
                               (invalid.id, 1, "channel_gone", "channel is invalid or deleted (ChannelInvalidError)"),
                               (DEMO_SOURCE_ID, 77, "unknown", "RPCError"),
                               (DEMO_CHANNEL_ID, 41, "online", None),
                               (DEMO_CHANNEL_ID, 0, "unknown", "not a valid message id")]
    telegram.assert_only_read()


def test_no_connection_means_unknown_for_every_allowlisted_target(tmp_path: Path, world: FakeWorld) -> None:
    class Offline(FakeTelegramClient):
        async def connect(self) -> None:
            raise ConnectionRefusedError("no route")

    found = check_online(settings_for(tmp_path), [OnlineTarget(DEMO_CHANNEL_ID, 41), OnlineTarget(DEMO_GROUP_ID, 1)],
                         client_factory=lambda credentials, settings: Offline(world))
    assert statuses(found) == [(DEMO_CHANNEL_ID, 41, "unknown", "could not connect (ConnectionRefusedError)"),
                               (DEMO_GROUP_ID, 1, "unknown", "not on the allowlist")]


def test_credentials_come_from_the_environment_and_are_never_logged(tmp_path: Path, telegram: Telegram,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    api_hash, session = "5ec2e7a91b0c4d6fa3e8b7c6d5e4f3a2", "1BVtsOKABuSECRETSESSIONxq3Ld8w7Hh0ZmVzdA9yM2Fr"
    for name in ("CHANWATCH_TELEGRAM_API_ID", "CHANWATCH_TELEGRAM_API_HASH", "CHANWATCH_TELEGRAM_SESSION"):
        monkeypatch.delenv(name, raising=False)
    targets = [OnlineTarget(DEMO_CHANNEL_ID, 41)]
    with pytest.raises(BadInputError, match="CHANWATCH_TELEGRAM_SESSION"):  # the default factory needs them
        check_online(settings_for(tmp_path), targets)
    assert check_online(settings_for(tmp_path), targets, client_factory=telegram)[0].status == "online"
    assert telegram.credentials == [None]  # a given factory (the demo's fake) may do without
    monkeypatch.setenv("CHANWATCH_TELEGRAM_API_ID", "123456")
    monkeypatch.setenv("CHANWATCH_TELEGRAM_API_HASH", api_hash)
    monkeypatch.setenv("CHANWATCH_TELEGRAM_SESSION", session)
    caplog.set_level(logging.DEBUG)
    world = telegram.world
    world.fail_username("fake_news_demo", errors.ChannelPrivateError(request=None))
    found = check_online(settings_for(tmp_path), targets, client_factory=telegram)
    assert telegram.credentials[-1] == TelegramCredentials(123456, api_hash, session)
    assert found[0].status == "channel_gone"
    for text in (caplog.text, repr(found)):
        assert api_hash not in text and session not in text


def test_the_check_names_no_writing_request() -> None:
    """Source-level guard, as for collect: the step and its helper name no join, send or read-receipt API."""
    sources = [REPO / "chanwatch" / "steps" / "online_check.py", REPO / "chanwatch" / "steps" / "telegram_access.py"]
    forbidden = re.compile(r"JoinChannel|ImportChatInvite|ReadHistory|SendMessage|send_message|send_file|"
                           r"send_read_acknowledge|forward_messages|edit_message|delete_messages|LeaveChannel|"
                           r"functions\.")
    for path in sources:
        assert not forbidden.search(path.read_text()), path
    assert set(online_check.STATUSES) == {"online", "deleted", "channel_gone", "unknown"}
