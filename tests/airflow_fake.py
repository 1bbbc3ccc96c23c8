"""The fake Telegram as a client factory that configuration can name (CHANWATCH_TELEGRAM_CLIENT_FACTORY).

`make airflow` and the Airflow tests use it so a whole DAG run works without Telegram credentials.
CHANWATCH_FAKE_FLOOD=<username>:<seconds>:<marker file> makes resolving that channel raise one
FloodWait; the marker file makes it happen once across task processes (the retry then succeeds).
CHANWATCH_FAKE_DELETED=<channel_id>:<message_id>,... deletes those messages (the recheck tests).
CHANWATCH_FAKE_BANNED_API_IDS=<api_id>,... makes the accounts with those api ids banned (every request raises
AuthKeyUnregisteredError); CHANWATCH_FAKE_CLIENT_LOG=<file> gets one line per client built: its api_id (the
many-accounts tests).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from telethon import errors

from tests.telegram_fake import FakeTelegramClient, demo_world


class _FloodOnceClient(FakeTelegramClient):
    async def get_entity(self, entity: Any) -> Any:
        flood = os.environ.get("CHANWATCH_FAKE_FLOOD")
        if flood and isinstance(entity, str):
            username, seconds, marker = flood.split(":", 2)
            if entity.lstrip("@").lower() == username.lower() and not Path(marker).exists():
                Path(marker).write_text("flooded once\n")
                raise errors.FloodWaitError(request=None, capture=int(seconds))
        return await super().get_entity(entity)


class _BannedClient(_FloodOnceClient):
    async def _fake_serve(self, request: Any) -> Any:
        self.requests.append(type(request))
        raise errors.AuthKeyUnregisteredError(request=None)


def client_factory(credentials: Any, settings: Any) -> FakeTelegramClient:
    """CHANWATCH_FAKE_EXPECT_API_ID makes the tests check that the credentials reached the task."""
    expected = os.environ.get("CHANWATCH_FAKE_EXPECT_API_ID")
    if expected and (credentials is None or credentials.api_id != int(expected)):
        raise AssertionError("the telegram_default connection did not reach the collect task")
    world = demo_world()
    for pair in filter(None, os.environ.get("CHANWATCH_FAKE_DELETED", "").split(",")):
        channel_id, message_id = pair.split(":")
        world.delete(int(channel_id), int(message_id))
    api_id = credentials.api_id if credentials is not None else None
    if os.environ.get("CHANWATCH_FAKE_CLIENT_LOG"):
        with open(os.environ["CHANWATCH_FAKE_CLIENT_LOG"], "a") as log:
            log.write(f"{api_id}\n")
    banned = {int(i) for i in filter(None, os.environ.get("CHANWATCH_FAKE_BANNED_API_IDS", "").split(","))}
    return (_BannedClient if api_id in banned else _FloodOnceClient)(world)
