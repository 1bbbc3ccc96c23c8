"""Live collection against a fake Telegram that serves real Telethon TL objects and raises real errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from telethon import errors
from telethon.tl import functions

from chanwatch.settings import AllowlistEntry, Settings, load_settings
from chanwatch.steps.collect import collect
from tests.conftest import REPO
from tests.telegram_fake import (
    DEMO_CHANNEL_ID,
    DEMO_MESSAGES,
    DEMO_START,
    FakeTelegramClient,
    FakeWorld,
    demo_world,
    make_channel,
    make_message,
)

NOW = DEMO_START + dt.timedelta(days=6)  # the demo's 41 posts span five days
APPROVED = {"basis": "test fixture", "approved_by": "tests", "approved_at": dt.date(2026, 11, 23)}
ALLOWED_REQUESTS = {"ResolveUsernameRequest", "GetFullChannelRequest", "GetHistoryRequest", "GetFileRequest",
                    "GetChannelsRequest"}


def collect_settings(root: str | Path, *, commit_every: int = 5000, max_media_bytes: int = 20 * 1024 * 1024,
                     channels: tuple[str, ...] = ("fake_news_demo",)) -> Settings:
    settings = load_settings(storage=str(root), environ={})
    entries = tuple(AllowlistEntry(name, channel_id=DEMO_CHANNEL_ID if name == "fake_news_demo" else None,
                                   **APPROVED) for name in channels)
    telegram = dataclasses.replace(settings.telegram, requests_per_minute=0, downloads_per_minute=0,
                                   commit_every=commit_every, max_media_bytes=max_media_bytes,
                                   backfill_days=30)
    return dataclasses.replace(settings, allowlist=entries, telegram=telegram)


def rows(root: Path, dataset: str, where: str = "true") -> list[dict]:
    files = list((root / dataset).rglob("*.parquet"))
    if not files:
        return []
    table = duckdb.sql(f"SELECT * FROM read_parquet({[str(f) for f in files]}, hive_partitioning = false, "
                       f"union_by_name = true) WHERE {where} ORDER BY ALL").to_arrow_table()
    return table.to_pylist()


def messages(root: Path) -> dict[int, dict]:
    found = rows(root, "messages", f"channel_id = {DEMO_CHANNEL_ID}")
    assert len(found) == len({r["message_id"] for r in found}), "one row per message"
    return {r["message_id"]: r for r in found}


def run(root: Path, world: FakeWorld, now: dt.datetime = NOW, **kw):
    client = FakeTelegramClient(world)
    settings_kw = {k: kw.pop(k) for k in ("commit_every", "max_media_bytes", "channels") if k in kw}
    result = collect(collect_settings(root, **settings_kw), client, now=now, **kw)
    return result, client


@pytest.fixture
def world() -> FakeWorld:
    return demo_world()


def test_backfill_stores_messages_media_and_snapshot(tmp_path: Path, world: FakeWorld) -> None:
    result, client = run(tmp_path, world)
    outcome = result.channels[0]
    assert outcome.status == "ok" and outcome.counts["messages_new"] == 40  # 41 ids, 30 was deleted before
    stored = messages(tmp_path)
    assert sorted(stored) == [i for i in range(1, 42) if i != DEMO_MESSAGES["gap"]]
    assert stored[1]["message_type"] == "service" and stored[1]["service_action"] == "channel_create"
    assert stored[DEMO_MESSAGES["hashtag"]]["hashtags"] == ["#demo"]
    assert stored[DEMO_MESSAGES["url"]]["urls"] and stored[DEMO_MESSAGES["mention"]]["mentions"]
    assert stored[DEMO_MESSAGES["forward"]]["fwd_from_channel_id"] is not None
    assert stored[DEMO_MESSAGES["reply"]]["reply_to_message_id"] is not None
    assert all(r["raw_schema"].startswith("telegram-layer-") and r["raw_json"].startswith("{") for r in stored.values())
    assert stored[2]["url"] == "https://t.me/fake_news_demo/2" and stored[2]["views"] > 0
    album = [stored[i] for i in DEMO_MESSAGES["album"]]
    assert len({r["grouped_id"] for r in album}) == 1 and album[0]["grouped_id"] is not None

    media = {r["message_id"]: r for r in rows(tmp_path, "media")}
    photo = media[DEMO_MESSAGES["photo"]]
    assert (photo["status"], photo["hashed_variant"]) == ("hashed", "y") and len(photo["pdq"]) == 64
    assert all(media[i]["status"] == "hashed" for i in DEMO_MESSAGES["album"])
    video = media[DEMO_MESSAGES["video"]]
    assert video["hashed_variant"] == "full" and video["frames"] and video["source_file_id"]
    assert media[DEMO_MESSAGES["document"]]["status"] == "skipped"  # a PDF: not downloaded
    snapshot = rows(tmp_path, "channels")
    assert [(s["username"], s["participants_count"], s["snapshot_date"]) for s in snapshot] == [
        ("fake_news_demo", 1234, NOW.date())]
    assert {r.__name__ for r in client.requests} <= ALLOWED_REQUESTS


def test_incremental_run_picks_up_new_messages_edits_counters_and_deletions(tmp_path: Path,
                                                                            world: FakeWorld) -> None:
    run(tmp_path, world)
    before = messages(tmp_path)
    world.edit(DEMO_CHANNEL_ID, 38, text="Corrected text", edit_date=NOW + dt.timedelta(hours=1))
    world.messages[DEMO_CHANNEL_ID][39].views = 99_999
    world.delete(DEMO_CHANNEL_ID, 40)
    world.add_message(make_message(DEMO_CHANNEL_ID, 42, NOW + dt.timedelta(hours=2), "Fresh post", views=5))
    result, client = run(tmp_path, world, now=NOW + dt.timedelta(days=1))
    counts = result.channels[0].counts
    assert counts["messages_new"] == 1 and counts["messages_deleted"] == 1 and counts["media_reused"] >= 1
    after = messages(tmp_path)
    assert after[38]["text"] == "Corrected text" and after[38]["edit_date"] is not None
    assert after[39]["views"] == 99_999
    assert after[40]["deleted"] is True and after[40]["text"] == before[40]["text"]  # marked, not dropped
    assert after[42]["text"] == "Fresh post"
    assert after[2] == before[2]  # outside the rescan window: untouched
    unchanged = [i for i in before if i not in (38, 39, 40)]
    assert all(after[i]["collected_at"] == before[i]["collected_at"] for i in unchanged)
    assert not any(c[0] == "download_media" for c in client.calls), "unchanged media is not downloaded again"


def test_flood_wait_mid_channel_commits_progress_and_the_next_run_finishes(tmp_path: Path,
                                                                           world: FakeWorld) -> None:
    world.flood_on("iter_messages", after_calls=15, seconds=900)
    result, _ = run(tmp_path, world, commit_every=5)
    outcome = result.channels[0]
    assert (outcome.status, outcome.flood_wait_s) == ("flood_wait", 900) and result.retry_needed
    kept = messages(tmp_path)
    assert sorted(kept) == list(range(1, 16))  # the 15 messages read before the wait are kept
    result, _ = run(tmp_path, world)
    assert result.channels[0].status == "ok"
    assert len(messages(tmp_path)) == 40


def test_a_killed_collector_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tests.collect_runner", str(tmp_path), NOW.isoformat(), "8"]
    env = {**os.environ, "CHANWATCH_FAULT_INJECT": "commit:5"}  # killed in the middle of the second commit
    killed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    partial = messages(tmp_path)
    assert 0 < len(partial) < 40
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert sorted(messages(tmp_path)) == [i for i in range(1, 42) if i != DEMO_MESSAGES["gap"]]
    media = rows(tmp_path, "media")
    assert len(media) == len({(r["message_id"], r["media_index"]) for r in media})


def test_groups_users_bots_and_unknown_or_private_channels_are_refused_and_others_go_on(
        tmp_path: Path, world: FakeWorld) -> None:
    world.fail_username("fake_source_demo", errors.ChannelPrivateError(request=None))
    world.add_channel(make_channel(1888000099, "slow_demo", "Slow"), about="")
    world.fail_username("slow_demo", TimeoutError("timed out"))
    channels = ("fake_group_demo", "demo_user", "demo_helper_bot", "no_such_channel", "fake_source_demo",
                "slow_demo", "fake_news_demo")
    result, client = run(tmp_path, world, channels=channels)
    status = {c.username: (c.status, c.reason) for c in result.channels}
    assert status["fake_group_demo"][0] == "refused" and "group" in status["fake_group_demo"][1]
    assert status["demo_user"][0] == "refused" and "user" in status["demo_user"][1]
    assert status["demo_helper_bot"][0] == "refused" and "bot" in status["demo_helper_bot"][1]
    assert status["no_such_channel"][0] == "failed"
    assert status["fake_source_demo"] == ("failed", status["fake_source_demo"][1])
    assert "ChannelPrivateError" in status["fake_source_demo"][1]
    assert status["slow_demo"][0] == "error" and result.retry_needed  # transient: the scheduler retries
    assert status["fake_news_demo"][0] == "ok"
    assert {r["channel_id"] for r in rows(tmp_path, "messages")} == {DEMO_CHANNEL_ID}
    assert {r.__name__ for r in client.requests} <= ALLOWED_REQUESTS


def test_a_renamed_channel_is_followed_by_id_and_one_made_private_is_refused(tmp_path: Path,
                                                                             world: FakeWorld) -> None:
    run(tmp_path, world)
    world.rename(DEMO_CHANNEL_ID, "fake_news_renamed")
    result, _ = run(tmp_path, world, now=NOW + dt.timedelta(days=1))
    assert result.channels[0].status == "ok" and result.channels[0].counts["username_changed"] == 1
    assert [s["username"] for s in rows(tmp_path, "channels")] == ["fake_news_demo", "fake_news_renamed"]
    world.rename(DEMO_CHANNEL_ID, None)
    result, _ = run(tmp_path, world, now=NOW + dt.timedelta(days=2))
    assert (result.channels[0].status, result.channels[0].reason) == ("refused",
                                                                      "a private channel (no public username)")


def test_a_caught_up_channel_is_fetched_by_id_not_resolved_by_name_again(tmp_path: Path, world: FakeWorld) -> None:
    """ResolveUsername is the call Telegram limits hardest: once a checkpoint holds the channel's id and access
    hash, later runs ask by id (GetChannels); a hash from another account's session falls back to the name."""
    first, client = run(tmp_path, world)
    assert first.channels[0].status == "ok" and "ResolveUsernameRequest" in {r.__name__ for r in client.requests}
    later, client = run(tmp_path, world, now=NOW + dt.timedelta(hours=1))
    kinds = [r.__name__ for r in client.requests]
    assert later.channels[0].status == "ok" and "ResolveUsernameRequest" not in kinds
    assert kinds[0] == "GetChannelsRequest"
    checkpoint = tmp_path / "_state" / "checkpoints" / "telegram" / f"{DEMO_CHANNEL_ID}.json"
    state = json.loads(checkpoint.read_text())
    checkpoint.write_text(json.dumps({**state, "access_hash": state["access_hash"] + 1}))  # another account's
    moved, client = run(tmp_path, world, now=NOW + dt.timedelta(hours=2))
    kinds = [r.__name__ for r in client.requests]
    assert moved.channels[0].status == "ok" and kinds[:2] == ["GetChannelsRequest", "ResolveUsernameRequest"]
    assert json.loads(checkpoint.read_text())["access_hash"] == state["access_hash"]  # this session's hash again


def test_media_over_the_cap_falls_back_to_the_thumbnail(tmp_path: Path, world: FakeWorld) -> None:
    run(tmp_path / "a", world, max_media_bytes=5_000)  # the demo video is 7.9 kB, its thumbnail 2.7 kB
    media = {r["message_id"]: r for r in rows(tmp_path / "a", "media")}
    video = media[DEMO_MESSAGES["video"]]
    assert (video["status"], video["hashed_variant"]) == ("hashed", "thumbnail") and video["pdq"]
    photo = media[DEMO_MESSAGES["photo"]]  # every size over 5 kB: nothing downloaded
    assert photo["status"] == "skipped" and "cap" in photo["status_reason"]
    run(tmp_path / "b", demo_world(), max_media_bytes=30_000)  # the photo: m 9.9 kB, x 60 kB, y 124 kB
    photo = {r["message_id"]: r for r in rows(tmp_path / "b", "media")}[DEMO_MESSAGES["photo"]]
    assert (photo["status"], photo["hashed_variant"], photo["hashed_bytes"]) == ("hashed", "m", 9927)


def test_collector_code_cannot_join_send_or_mark_read() -> None:
    """The request types the collector may send are reading ones; the code names no other."""
    sources = [*(REPO / "collectors" / "telegram").glob("*.py"), REPO / "chanwatch" / "steps" / "collect.py"]
    forbidden = re.compile(r"JoinChannel|ImportChatInvite|ReadHistory|SendMessage|send_message|send_file|"
                           r"send_read_acknowledge|forward_messages|edit_message|delete_messages|LeaveChannel")
    for path in sources:
        assert not forbidden.search(path.read_text()), path
    used = set(re.findall(r"functions\.\w+\.(\w+Request)", "".join(p.read_text() for p in sources)))
    assert used == {"GetFullChannelRequest"}
    assert functions.channels.GetFullChannelRequest.__name__ in ALLOWED_REQUESTS
