"""Building Telethon clients: always from a StringSession, never a `.session` file."""

from __future__ import annotations

from collections.abc import Callable

from telethon import TelegramClient
from telethon.sessions import StringSession

from collectors.telegram.credentials import TelegramCredentials
from collectors.telegram.settings import TelegramSettings


def new_client(credentials: TelegramCredentials, settings: TelegramSettings) -> TelegramClient:
    """A client on the stored session; it connects only when the collector asks."""
    return TelegramClient(StringSession(credentials.session), credentials.api_id, credentials.api_hash,
                          flood_sleep_threshold=settings.flood_sleep_threshold, receive_updates=False,
                          connection_retries=3, request_retries=3)


# The CLI builds clients through this name, so tests can put a fake client (real TL objects) in place.
client_factory: Callable[[TelegramCredentials, TelegramSettings], TelegramClient] = new_client


async def create_session(client: TelegramClient, phone: Callable[[], str], code: Callable[[], str],
                         password: Callable[[], str]) -> str:
    """Log in interactively and return the session string (the caller prints it once)."""
    await client.start(phone=phone, code_callback=code, password=password)
    try:
        return StringSession.save(client.session)
    finally:
        await client.disconnect()
