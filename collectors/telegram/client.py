"""Building Telethon clients: always from a StringSession, never a `.session` file."""

from __future__ import annotations

import binascii
import struct
from collections.abc import Callable

from telethon import TelegramClient
from telethon.sessions import StringSession

from collectors.telegram.credentials import ENV_SESSION, TelegramCredentials
from collectors.telegram.settings import TelegramSettings
from processing.errors import BadInputError


def new_client(credentials: TelegramCredentials, settings: TelegramSettings) -> TelegramClient:
    """A client on the stored session; it connects only when the collector asks."""
    try:
        session = StringSession(credentials.session)
    except (ValueError, binascii.Error, struct.error):
        # The message must not quote the string: it is a secret even when malformed.
        raise BadInputError(f"{ENV_SESSION} is not a valid Telethon StringSession; create one with "
                            "`chanwatch login`") from None
    return TelegramClient(session, credentials.api_id, credentials.api_hash,
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
