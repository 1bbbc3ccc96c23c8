"""The fake Telegram as a client factory that configuration can name (CHANWATCH_TELEGRAM_CLIENT_FACTORY).

`make airflow` and the Airflow tests use it so a whole DAG run works without Telegram credentials.
CHANWATCH_FAKE_FLOOD=<username>:<seconds>:<marker file> makes resolving that channel raise one
FloodWait; the marker file makes it happen once across task processes (the retry then succeeds).
CHANWATCH_FAKE_DELETED=<channel_id>:<message_id>,... deletes those messages (the recheck tests).
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


def client_factory(credentials: Any, settings: Any) -> FakeTelegramClient:
    """CHANWATCH_FAKE_EXPECT_API_ID makes the tests check that the credentials reached the task."""
    expected = os.environ.get("CHANWATCH_FAKE_EXPECT_API_ID")
    if expected and (credentials is None or credentials.api_id != int(expected)):
        raise AssertionError("the telegram_default connection did not reach the collect task")
    world = demo_world()
    for pair in filter(None, os.environ.get("CHANWATCH_FAKE_DELETED", "").split(",")):
        channel_id, message_id = pair.split(":")
        world.delete(int(channel_id), int(message_id))
    return _FloodOnceClient(world)
