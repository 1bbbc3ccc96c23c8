"""Removal tracking, collector side: are referred messages still online?

Referred items were reported to Telegram for takedown; re-fetching them by id is how we measure whether
they were removed. The check only reads. Each allowlisted channel is resolved as `collect` resolves it
(the same refusal rules, the rename follow-up through collect's checkpoint, the same request budget),
then its messages are asked for by id in batches. Nothing is written, no channel is joined, nothing is
sent, and a channel that is not on the allowlist is never contacted.

A channel that fails (gone, flood wait, network) marks only its own targets; the others are still checked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from telethon import TelegramClient, errors

from chanwatch.settings import AllowlistEntry, Settings
from chanwatch.steps.telegram_access import (
    CHANNEL_GONE_ERRORS,
    CHECKPOINT_KIND,
    ClientFactory,
    checkpoint_key,
    known_channel,
    moved_reason,
    new_reader,
    telegram_client,
)
from processing.telegram_records import refusal_reason
from storage.checkpoints import read_checkpoint
from storage.store import Store

log = logging.getLogger("chanwatch.online_check")

ONLINE = "online"  # the message is there
DELETED = "deleted"  # the channel is there, the message is not
CHANNEL_GONE = "channel_gone"  # deleted, private, banned, no longer a public broadcast channel, name gone
UNKNOWN = "unknown"  # not checked: flood wait, network, not allowlisted, ...
STATUSES = (ONLINE, DELETED, CHANNEL_GONE, UNKNOWN)

NOT_ALLOWLISTED = "not on the allowlist"
# A short reason per "gone" answer; the Telethon class name is added, the error text never is.
_GONE_REASONS: dict[type[BaseException], str] = {
    errors.ChannelPrivateError: "channel is private, deleted or closed to this account",
    errors.ChannelInvalidError: "channel is invalid or deleted",
    errors.ChannelBannedError: "channel is banned",
    errors.ChannelPublicGroupNaError: "channel is not available",
    errors.UsernameNotOccupiedError: "username no longer resolves",
    errors.UsernameInvalidError: "username no longer resolves",
}


@dataclass(frozen=True)
class OnlineTarget:
    """One referred message: where it was posted, and the channel's public username if known."""

    channel_id: int
    message_id: int
    username: str | None = None


@dataclass(frozen=True)
class OnlineStatus:
    """What the check found for one target; `detail` is a short reason, never an error text or a secret."""

    target: OnlineTarget
    status: str  # one of STATUSES
    detail: str | None = None


@dataclass
class _Channel:
    """The targets of one allowlisted channel, by their index in the caller's list."""

    channel_id: int
    entry: AllowlistEntry
    indexes: list[int] = field(default_factory=list)


def check_online(settings: Settings, targets: Sequence[OnlineTarget], *,
                 client_factory: ClientFactory | None = None) -> list[OnlineStatus]:
    """One status per target, in the order given.

    `client_factory(credentials or None, settings.telegram)` builds the Telegram client (default: the
    configured `collectors.telegram.client.client_factory` with the environment's credentials); no client is
    built when no target is on the allowlist.
    """
    started = time.perf_counter()
    targets = list(targets)
    store = Store(settings.storage_root)
    results: dict[int, OnlineStatus] = {}
    plan = _plan(settings, store, targets, results)
    requests = 0
    if plan:
        checker = _Checker(settings, telegram_client(settings, client_factory), store)
        asyncio.run(checker.run(plan, targets, results))
        requests = checker.reader.requests.acquired
    statuses = [results[i] for i in range(len(targets))]
    counts = Counter(s.status for s in statuses)
    log.info("event=online_check.done targets=%d channels=%d %s not_allowlisted=%d requests=%d seconds=%.1f",
             len(targets), len(plan), " ".join(f"{s}={counts[s]}" for s in STATUSES),
             sum(s.detail == NOT_ALLOWLISTED for s in statuses), requests, time.perf_counter() - started)
    return statuses


def _plan(settings: Settings, store: Store, targets: list[OnlineTarget],
          results: dict[int, OnlineStatus]) -> dict[int, _Channel]:
    """Group the allowlisted targets per channel; the rest get their status here, without any request.

    A channel is allowlisted by its id (the entry's `channel_id`, or the id collect recorded for the entry),
    or, for an entry whose id is not known yet, by the username one of its targets gives. That claim is
    checked after resolving: the name must lead to this very channel id.
    """
    entry_ids: dict[str, int | None] = {}
    by_id: dict[int, AllowlistEntry] = {}
    for entry in settings.allowlist:
        channel_id = entry.channel_id
        if channel_id is None:
            found = known_channel(read_checkpoint(store, CHECKPOINT_KIND, checkpoint_key(entry)))
            channel_id = found[0] if found else None
        entry_ids[entry.username.lower()] = channel_id
        if channel_id is not None:
            by_id.setdefault(channel_id, entry)
    for target in targets:
        if target.channel_id in by_id or not target.username:
            continue
        named = settings.channel_by_username(target.username)
        if named is not None and entry_ids.get(named.username.lower()) is None:
            by_id[target.channel_id] = named
    plan: dict[int, _Channel] = {}
    for index, target in enumerate(targets):
        entry = by_id.get(target.channel_id)
        if entry is None:
            results[index] = OnlineStatus(target, UNKNOWN, NOT_ALLOWLISTED)
        elif target.message_id < 1:
            results[index] = OnlineStatus(target, UNKNOWN, "not a valid message id")
        else:
            plan.setdefault(target.channel_id, _Channel(target.channel_id, entry)).indexes.append(index)
    return plan


class _Checker:
    def __init__(self, settings: Settings, client: TelegramClient, store: Store) -> None:
        self.client = client
        self.store = store
        self.reader = new_reader(client, settings.telegram)

    async def run(self, plan: dict[int, _Channel], targets: list[OnlineTarget],
                  results: dict[int, OnlineStatus]) -> None:
        try:
            await self.client.connect()
        except (errors.RPCError, OSError) as exc:
            log.warning("event=online_check.connect_failed error=%s channels=%d", type(exc).__name__, len(plan))
            for channel in plan.values():
                for index in channel.indexes:
                    results[index] = OnlineStatus(targets[index], UNKNOWN, f"could not connect ({type(exc).__name__})")
            return
        try:
            for channel in plan.values():
                found = await self._channel(channel, [targets[i].message_id for i in channel.indexes])
                for index in channel.indexes:
                    status, detail = found[targets[index].message_id]
                    results[index] = OnlineStatus(targets[index], status, detail)
        finally:
            await self.client.disconnect()

    async def _channel(self, channel: _Channel, message_ids: list[int]) -> dict[int, tuple[str, str | None]]:
        """(status, detail) per message id of one channel; whatever was not reached gets the channel's fate."""
        wanted = list(dict.fromkeys(message_ids))
        found: dict[int, tuple[str, str | None]] = {}
        rest: tuple[str, str | None] | None = None
        username = channel.entry.username
        try:
            rest = await self._read(channel, wanted, found)
        except errors.FloodWaitError as wait:
            rest = (UNKNOWN, f"flood wait {wait.seconds} s")
        except CHANNEL_GONE_ERRORS as exc:
            rest = (CHANNEL_GONE, f"{_GONE_REASONS.get(type(exc), 'channel is gone')} ({type(exc).__name__})")
        except (errors.RPCError, OSError) as exc:  # transient: timeouts, connection loss, other RPC errors
            rest = (UNKNOWN, type(exc).__name__)
        for message_id in wanted:
            if message_id not in found and rest is not None:
                found[message_id] = rest
        counts = Counter(status for status, _ in found.values())
        log.info("event=online_check.channel channel=%s channel_id=%d messages=%d %s%s", username,
                 channel.channel_id, len(wanted), " ".join(f"{s}={counts[s]}" for s in STATUSES),
                 f" reason={rest[1]!r}" if rest else "")
        return found

    async def _read(self, channel: _Channel, wanted: list[int],
                    found: dict[int, tuple[str, str | None]]) -> tuple[str, str | None] | None:
        """Resolve the channel and read the messages into `found`; the status for the rest if it stops early."""
        username = channel.entry.username
        checkpoint = read_checkpoint(self.store, CHECKPOINT_KIND, checkpoint_key(channel.entry))
        known = known_channel(checkpoint)
        if known is not None and known[0] != channel.channel_id:
            known = None
        try:
            entity = await self.reader.resolve(username, known)
        except ValueError:  # Telethon's "no such username", and no recorded id to follow the channel by
            return CHANNEL_GONE, f"@{username} no longer resolves"
        refused = refusal_reason(entity)
        if refused:
            return CHANNEL_GONE, refused
        moved = moved_reason(username, channel.channel_id, entity)
        if moved:  # the name went to another channel; ours may live on under a new one
            return UNKNOWN, moved
        async for chunk, messages in self.reader.by_ids(entity, wanted):
            for message_id in chunk:
                found[message_id] = (ONLINE, None) if message_id in messages else (DELETED, "message not found")
        return None
