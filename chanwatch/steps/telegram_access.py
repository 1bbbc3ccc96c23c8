"""What the live Telegram steps share: the account's client and budgets, how an allowlisted channel is
resolved, and which Telethon errors mean a channel is gone for good.

`collect` and `online_check` both go through here, so a channel is resolved, followed after a rename
and classified the same way whichever step asks, and every request of either step is paced by the
same budgets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from telethon import TelegramClient, errors

from chanwatch.settings import AllowlistEntry, Settings
from collectors.telegram import client as tg_client
from collectors.telegram.credentials import TelegramCredentials, credentials_from_env
from collectors.telegram.pacing import RateBudget
from collectors.telegram.reader import ChannelReader
from collectors.telegram.settings import TelegramSettings
from processing.errors import BadInputError

# Where `collect` keeps each channel's progress (id, access hash, highest stored message id).
CHECKPOINT_KIND = "telegram"
# Telegram's answers for a channel that is deleted, banned, private or whose username is gone: retrying
# will not help.
CHANNEL_GONE_ERRORS: tuple[type[BaseException], ...] = (
    errors.ChannelPrivateError, errors.UsernameNotOccupiedError, errors.UsernameInvalidError,
    errors.ChannelInvalidError, errors.ChannelBannedError, errors.ChannelPublicGroupNaError)
# Telegram's answers when the account's session is dead (the account banned or deactivated, the session
# revoked, expired or used from two places at once): no request of this account will work until the operator
# replaces its session. Collection goes on with the other accounts.
ACCOUNT_OUT_ERRORS: tuple[type[BaseException], ...] = (
    errors.AuthKeyUnregisteredError, errors.AuthKeyInvalidError, errors.AuthKeyDuplicatedError,
    errors.UserDeactivatedError, errors.UserDeactivatedBanError, errors.SessionRevokedError,
    errors.SessionExpiredError)

# Builds the account's client from (credentials or None, [telegram] settings), like
# `collectors.telegram.client.client_factory` and the CHANWATCH_TELEGRAM_CLIENT_FACTORY factories.
ClientFactory = Callable[[TelegramCredentials | None, TelegramSettings], TelegramClient]


def checkpoint_key(entry: AllowlistEntry) -> str:
    return str(entry.channel_id) if entry.channel_id else entry.username.lower()


def known_channel(checkpoint: Mapping[str, Any] | None) -> tuple[int, int] | None:
    """(channel id, access hash) from a collect checkpoint: how a channel that changed its username is found."""
    if checkpoint and checkpoint.get("channel_id") and checkpoint.get("access_hash"):
        return int(checkpoint["channel_id"]), int(checkpoint["access_hash"])
    return None


def moved_reason(username: str, expected_id: int | None, entity: Any) -> str | None:
    """Why the entity behind an allowlisted username is not the channel we mean (the name passed to another)."""
    if expected_id and entity.id != expected_id:
        return f"@{username} now belongs to channel {entity.id}, not the allowlisted {expected_id}"
    return None


def new_reader(client: TelegramClient, tg: TelegramSettings) -> ChannelReader:
    """A reader with fresh per-run request and download budgets."""
    return ChannelReader(client, RateBudget(tg.requests_per_minute), RateBudget(tg.downloads_per_minute),
                         tg.page_size)


def telegram_client(settings: Settings, client_factory: ClientFactory | None = None) -> TelegramClient:
    """The account's client, built as `chanwatch collect` builds it: the configured factory on the credentials
    from the environment (missing credentials are a BadInputError naming the variables to set).

    A given factory (an Airflow connection's, the fake Telegram) gets the credentials when they are set and
    None otherwise, as orchestration does for CHANWATCH_TELEGRAM_CLIENT_FACTORY.
    """
    account = settings.telegram.accounts[0]  # with several accounts, the first configured one
    if client_factory is None:
        return tg_client.client_factory(credentials_from_env(account=account), settings.telegram)
    try:
        credentials: TelegramCredentials | None = credentials_from_env(account=account)
    except BadInputError:
        credentials = None
    return client_factory(credentials, settings.telegram)
