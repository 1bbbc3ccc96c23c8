"""The `collect` step: live collection of the allowlisted public channels through Telethon.

Per channel: resolve it (refusing anything but a public broadcast channel), take the day's
snapshot, re-read the recent window (counters, edits, deletions), then read new messages oldest
first. Media is downloaded into memory, hashed and dropped. Rows are committed every
`commit_every` messages and at the end, and the channel's checkpoint (highest stored id) is
written after each commit, so a run stopped anywhere resumes without loss or duplicates. A long
FloodWait ends the channel's step with its progress committed and the wait recorded.

With several Telegram accounts (`[telegram] accounts`), each channel is read by its account
(chanwatch.accounts: rendezvous hashing over the accounts in rotation). When an account is banned, or
hits a FloodWait of at least `account_flood_threshold` seconds, that is recorded, and the channel
(resuming from its checkpoint) and the rest of that account's channels go to their next account.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from telethon import TelegramClient, errors

from chanwatch.accounts import AccountHealth, available_accounts, record_health
from chanwatch.runs import new_run_id
from chanwatch.settings import AllowlistEntry, Settings
from chanwatch.steps.retention import message_policy
from chanwatch.steps.telegram_access import (
    ACCOUNT_OUT_ERRORS,
    CHANNEL_GONE_ERRORS,
    CHECKPOINT_KIND,
    checkpoint_key,
    known_channel,
    moved_reason,
    new_reader,
)
from collectors.telegram.reader import ChannelReader
from processing.assignment import choose_account
from processing.errors import BadInputError
from processing.hashing import hash_media
from processing.privacy import MessagePolicy
from processing.telegram_records import channel_row, media_ref, message_row, public_username, refusal_reason
from storage.checkpoints import read_checkpoint, write_checkpoint, write_run_report
from storage.media_index import REUSED_COLUMNS, known_media
from storage.objectstore import connect_duckdb
from storage.schemas import BUCKET_SIZE, CHANNELS, MEDIA, MESSAGES
from storage.store import Store
from storage.writer import DatasetWriter, channel_file, message_file

log = logging.getLogger("chanwatch.collect")
# Permanent per-channel failures (retrying will not help; ValueError: Telethon's "no such username") versus
# transient ones (Airflow retries).
PERMANENT = (*CHANNEL_GONE_ERRORS, ValueError)


@dataclass
class ChannelOutcome:
    username: str
    channel_id: int | None = None
    status: str = "ok"  # ok, refused, failed (permanent), error (transient), flood_wait
    reason: str | None = None
    flood_wait_s: int | None = None
    counts: Counter = field(default_factory=Counter)
    key: str = ""  # the channel's checkpoint key
    account: str | None = None  # the account that read it (last)
    failed_over: list[str] = field(default_factory=list)  # accounts that went out while reading it
    account_out: str | None = None  # banned or flood_wait: this attempt's account is out of rotation


@dataclass
class CollectResult:
    run_id: str
    channels: list[ChannelOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def flood_waits(self) -> list[int]:
        return [c.flood_wait_s for c in self.channels if c.flood_wait_s]

    @property
    def retry_needed(self) -> bool:
        return any(c.status in ("error", "flood_wait") for c in self.channels)


class _Pending:
    """Rows waiting for the next commit, and the highest message id they complete."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.media: list[dict[str, Any]] = []
        self.snapshot: dict[str, Any] | None = None
        self.max_id: int | None = None

    def __len__(self) -> int:
        return len(self.messages)


@dataclass
class _Account:
    name: str
    client: TelegramClient
    reader: ChannelReader


class Collector:
    def __init__(self, settings: Settings, client: TelegramClient | None = None, *, since: dt.datetime | None = None,
                 only: list[str] | None = None, now: dt.datetime | None = None,
                 clients: Callable[[str], TelegramClient] | None = None, prefer: str | None = None) -> None:
        """`client` reads every channel (one account), or `clients(account)` builds each account's client when it
        is first needed; `prefer`: the account to use while it is in rotation (an Airflow task's pool)."""
        self.settings = settings
        self.tg = settings.telegram
        self.accounts = self.tg.accounts
        if clients is None:
            if client is None or len(self.accounts) > 1:
                raise ValueError("collect: pass clients= (a client per account) when several accounts are configured")
            clients = lambda _account: client  # noqa: E731
        self.clients = clients
        self.prefer = prefer
        self._open: dict[str, _Account] = {}
        self.since = since
        self.only = [u.lstrip("@").lower() for u in only or []]
        self.now = now or dt.datetime.now(dt.UTC)
        self.store = Store(settings.storage_root)
        self.run_id = new_run_id("collect")
        self.result = CollectResult(self.run_id)
        self.reader: ChannelReader | None = None  # the current channel's account's reader
        self.policy: MessagePolicy | None = None  # set at the first commit, under the writer lock

    def entries(self) -> list[AllowlistEntry]:
        entries = list(self.settings.allowlist)
        if self.only:
            unknown = [u for u in self.only if not self.settings.channel_by_username(u)]
            if unknown:
                raise BadInputError(f"not on the allowlist: {', '.join('@' + u for u in unknown)} (only allowlisted "
                                    "channels are collected)")
            entries = [e for e in entries if e.username.lower() in self.only]
        return entries

    async def run(self) -> CollectResult:
        started = time.perf_counter()
        entries = self.entries()
        # No lock while reading Telegram: each commit takes the storage root's writer lock for itself, so
        # collectors of other channels and accounts (parallel Airflow tasks) run side by side.
        try:
            for entry in entries:
                self.result.channels.append(await self._routed(entry))
        finally:
            for account in self._open.values():
                await account.client.disconnect()
        self.result.seconds = time.perf_counter() - started
        self._report()
        return self.result

    # -- accounts ---------------------------------------------------------------------------------
    async def _account(self, name: str) -> _Account:
        if name not in self._open:
            client = self.clients(name)
            await client.connect()
            self._open[name] = _Account(name, client, new_reader(client, self.tg))
        return self._open[name]

    async def _routed(self, entry: AllowlistEntry) -> ChannelOutcome:
        """Read the channel with its account; if that account goes out meanwhile, record it and go on with the
        channel's next account in rotation (from the channel's checkpoint), until none is left."""
        tried: list[str] = []
        counts: Counter = Counter()
        while True:
            available = [a for a in available_accounts(self.store, self.accounts, self.now) if a not in tried]
            name = choose_account(entry.username, self.accounts, available, None if tried else self.prefer)
            account = await self._account(name)
            self.reader = account.reader
            outcome = await self._channel(entry, name)
            outcome.account, outcome.failed_over = name, list(tried)
            outcome.counts.update(counts)
            if outcome.account_out is None:
                return outcome
            until = (self.now + dt.timedelta(seconds=outcome.flood_wait_s or 0)
                     if outcome.account_out == "flood_wait" else None)
            record_health(self.store, AccountHealth(name, outcome.account_out, self.now, until,
                                                    outcome.reason or ""))
            tried.append(name)
            if not [a for a in available if a not in tried]:
                return outcome  # no account left in rotation: the channel's trouble is reported as it is
            counts = Counter(outcome.counts)
            log.warning("event=collect.failover channel=%s account=%s status=%s", entry.username, name,
                        outcome.account_out)

    # -- one channel ------------------------------------------------------------------------------
    async def _channel(self, entry: AllowlistEntry, account: str = "default") -> ChannelOutcome:
        outcome = ChannelOutcome(entry.username, entry.channel_id, key=checkpoint_key(entry), account=account)
        checkpoint = read_checkpoint(self.store, CHECKPOINT_KIND, outcome.key) or {}
        pending = _Pending()
        state: dict[str, Any] | None = None
        try:
            entity = await self.reader.resolve(entry.username, known_channel(checkpoint))
            reason = refusal_reason(entity) or moved_reason(entry.username, entry.channel_id, entity)
            if reason:
                outcome.status, outcome.reason = "refused", reason
                return outcome
            outcome.channel_id = entity.id
            username = public_username(entity)
            if username.lower() != entry.username.lower():
                outcome.counts["username_changed"] = 1
                log.warning("event=collect.username_changed channel_id=%d allowlisted=%s now=%s", entity.id,
                            entry.username, username)
            full = await self.reader.full_channel(entity)
            pending.snapshot = channel_row(entity, full, self.now, self.run_id)
            state = {"channel_id": entity.id, "access_hash": entity.access_hash, "username": username,
                     "max_message_id": checkpoint.get("max_message_id", 0)}
            known = known_media(self.store, entity.id)
            if checkpoint.get("max_message_id"):
                await self._rescan(entity, username, state, pending, known, outcome)
            await self._read_new(entity, username, state, pending, known, outcome)
            self._commit(entity.id, state, pending, outcome)
        except errors.FloodWaitError as wait:
            outcome.status, outcome.flood_wait_s = "flood_wait", wait.seconds
            outcome.reason = f"Telegram asked to wait {wait.seconds} s (FloodWait); progress is committed"
            if wait.seconds >= self.tg.account_flood_threshold:
                outcome.account_out = "flood_wait"
            if state is not None:
                self._commit(outcome.channel_id, state, pending, outcome)
        except ACCOUNT_OUT_ERRORS as exc:  # the account's session is dead (banned, deactivated, revoked)
            outcome.status, outcome.account_out = "error", "banned"
            outcome.reason = f"account {account} is out: {type(exc).__name__}"
            if state is not None:
                self._commit(outcome.channel_id, state, pending, outcome)
        except PERMANENT as exc:
            outcome.status, outcome.reason = "failed", f"{type(exc).__name__}: {exc}"
        except (errors.RPCError, OSError) as exc:  # transient: timeouts, connection loss, other RPC errors
            outcome.status, outcome.reason = "error", f"{type(exc).__name__}: {exc}"
            if state is not None:
                self._commit(outcome.channel_id, state, pending, outcome)
        log.info("event=collect.channel channel=%s account=%s status=%s %s%s", entry.username, account,
                 outcome.status, " ".join(f"{k}={v}" for k, v in sorted(outcome.counts.items())),
                 f" reason={outcome.reason!r}" if outcome.reason else "")
        return outcome

    async def _rescan(self, entity: Any, username: str, state: dict, pending: _Pending, known: dict,
                      outcome: ChannelOutcome) -> None:
        """Re-read the recent window: latest counters and edits, and messages that vanished."""
        if self.tg.rescan_days <= 0:
            return
        window_start = self.now - dt.timedelta(days=self.tg.rescan_days)
        seen: set[int] = set()
        async for message in self.reader.history(entity, since=window_start, max_id=state["max_message_id"] + 1):
            seen.add(message.id)
            await self._add(message, entity.id, username, pending, known, outcome, "messages_rescanned")
            self._maybe_commit(entity.id, state, pending, outcome)
        for row in self._stored_window(entity.id, window_start, state["max_message_id"]):
            if row["message_id"] not in seen:
                row.update(deleted=True, collected_at=self.now, run_id=self.run_id)
                pending.messages.append(row)
                outcome.counts["messages_deleted"] += 1

    async def _read_new(self, entity: Any, username: str, state: dict, pending: _Pending, known: dict,
                        outcome: ChannelOutcome) -> None:
        since = None
        if not state["max_message_id"]:
            since = self.since or self.now - dt.timedelta(days=self.tg.backfill_days)
        async for message in self.reader.history(entity, min_id=state["max_message_id"], since=since):
            await self._add(message, entity.id, username, pending, known, outcome, "messages_new")
            pending.max_id = max(pending.max_id or 0, message.id)
            self._maybe_commit(entity.id, state, pending, outcome)

    async def _add(self, message: Any, channel_id: int, username: str, pending: _Pending, known: dict,
                   outcome: ChannelOutcome, counter: str) -> None:
        """Normalise one message and its media; rows join `pending` only once the media is done."""
        row = message_row(message, channel_id, username, self.now, self.run_id)
        media = await self._media_row(message, row, known, outcome)
        pending.messages.append(row)
        if media is not None:
            pending.media.append(media)
        outcome.counts[counter] += 1

    async def _media_row(self, message: Any, row: dict, known: dict, outcome: ChannelOutcome) -> dict | None:
        ref = media_ref(message)
        if ref is None:
            return None
        media = {"channel_id": row["channel_id"], "message_id": ref.message_id, "media_index": 0, "date": row["date"],
                 "media_kind": ref.media_kind, "mime_type": ref.mime_type, "file_name": ref.file_name,
                 "file_size": ref.file_size, "width": ref.width, "height": ref.height, "duration_s": ref.duration_s,
                 "source_file_id": ref.file_id, "hashed_at": self.now, "run_id": self.run_id}
        stored = known.get((ref.message_id, 0))
        if stored and stored["source_file_id"] == ref.file_id:
            media.update({k: stored[k] for k in (*REUSED_COLUMNS, "hashed_variant", "hashed_bytes", "md5", "sha256")})
            outcome.counts["media_reused"] += 1
            return media
        if ref.skip_reason:
            media.update(status="skipped", status_reason=ref.skip_reason)
            outcome.counts["media_skipped"] += 1
            return media
        try:
            data, variant, reason = await self.reader.download(message, ref, self.tg.max_media_bytes)
        except (errors.FloodWaitError, *ACCOUNT_OUT_ERRORS):
            raise
        except (errors.RPCError, TimeoutError, ConnectionError) as exc:
            data, variant, reason = None, None, f"download failed: {type(exc).__name__}: {exc}"
        if data is None:
            status = "skipped" if reason and "cap" in reason else "failed"
            media.update(status=status, status_reason=reason, hashed_variant=None)
            outcome.counts[f"media_{status}"] += 1
            return media
        hashes = hash_media(data, self.settings.hashing, labelled_kind=ref.media_kind)
        del data  # the bytes go no further than this function
        media.update(hashed_variant=variant, hashed_bytes=hashes.size, md5=hashes.md5, sha256=hashes.sha256,
                     pdq=hashes.pdq, pdq_quality=hashes.pdq_quality, phash=hashes.phash, dhash=hashes.dhash,
                     frames=hashes.frames, frame_count=hashes.frames_decoded, status=hashes.status,
                     status_reason=hashes.reason, width=ref.width or hashes.width, height=ref.height or hashes.height,
                     duration_s=ref.duration_s if ref.duration_s is not None else hashes.duration_s)
        outcome.counts[f"media_{hashes.status}"] += 1
        return media

    # -- storage ----------------------------------------------------------------------------------
    def _stored_window(self, channel_id: int, window_start: dt.datetime, max_id: int) -> list[dict[str, Any]]:
        files = [str(p) for p in (self.store.root / MESSAGES.name).glob(f"month=*/c{channel_id}-b*.parquet")]
        if not files:
            return []
        con = connect_duckdb(self.store.root)
        try:
            con.execute("SET TimeZone = 'UTC'")
            table = con.sql("SELECT * FROM read_parquet($files, hive_partitioning = false, union_by_name = true) "
                            "WHERE date >= $start AND message_id <= $max AND NOT coalesce(deleted, false)",
                            params={"files": files, "start": window_start, "max": max_id}).to_arrow_table()
        finally:
            con.close()
        return table.select(MESSAGES.schema.names).to_pylist()

    def _maybe_commit(self, channel_id: int, state: dict, pending: _Pending, outcome: ChannelOutcome) -> None:
        if len(pending) >= self.tg.commit_every:
            self._commit(channel_id, state, pending, outcome)

    def _commit(self, channel_id: int, state: dict, pending: _Pending, outcome: ChannelOutcome) -> None:
        """Write the pending rows in one transaction, then move the checkpoint up to what they cover.

        Each commit holds the writer lock only while it writes: the rows and checkpoint are this
        channel's own, so turns taken with other collectors cannot interleave within a channel."""
        with self.store.writer_lock():
            if self.policy is None:
                self.policy = message_policy(self.settings, self.store, self.now)
            self._commit_locked(channel_id, state, pending, outcome)

    def _commit_locked(self, channel_id: int, state: dict, pending: _Pending, outcome: ChannelOutcome) -> None:
        if pending.messages or pending.media or pending.snapshot:
            txn = self.store.begin(f"{self.run_id}-{channel_id}")
            writers = {spec.name: DatasetWriter(txn, spec, self.policy.apply if spec is MESSAGES else None)
                       for spec in (MESSAGES, MEDIA, CHANNELS)}
            try:
                for spec, rows in ((MESSAGES, pending.messages), (MEDIA, pending.media)):
                    for row in sorted(rows, key=lambda r: r["message_id"]):
                        month = row["date"].strftime("%Y-%m")
                        writers[spec.name].add(message_file(spec, channel_id, month, row["message_id"] // BUCKET_SIZE),
                                               row)
                if pending.snapshot:
                    writers[CHANNELS.name].add(channel_file(CHANNELS, channel_id, self.now.strftime("%Y-%m")),
                                               pending.snapshot)
                for writer in writers.values():
                    writer.close()
                txn.commit()
            except BaseException:
                for writer in writers.values():
                    writer.abandon()
                txn.abort()
                raise
            outcome.counts["messages_written"] += writers[MESSAGES.name].rows_changed
        if pending.max_id:
            state["max_message_id"] = max(state["max_message_id"], pending.max_id)
        write_checkpoint(self.store, CHECKPOINT_KIND, outcome.key,
                         {**state, "updated_at": self.now.isoformat(), "run_id": self.run_id})
        pending.messages, pending.media, pending.snapshot, pending.max_id = [], [], None, None

    def _report(self) -> None:
        readers = [account.reader for account in self._open.values()]
        requests = sum(r.requests.acquired for r in readers)
        downloads = sum(r.downloads.acquired for r in readers)
        report = {"run_id": self.run_id, "step": "collect", "seconds": self.result.seconds,
                  "requests": requests, "downloads": downloads,
                  "paced_wait_s": round(sum(r.requests.waited_s + r.downloads.waited_s for r in readers), 3),
                  "flood_waits_s": self.result.flood_waits,
                  "accounts": {a.name: {"requests": a.reader.requests.acquired,
                                        "downloads": a.reader.downloads.acquired} for a in self._open.values()},
                  "channels": [{"username": c.username, "channel_id": c.channel_id, "status": c.status,
                                "reason": c.reason, "flood_wait_s": c.flood_wait_s, "counts": dict(c.counts),
                                "account": c.account, "failed_over": c.failed_over}
                               for c in self.result.channels]}
        write_run_report(self.store, self.run_id, report)
        log.info("event=collect.done run_id=%s channels=%d ok=%d refused=%d failed=%d flood_waits=%s requests=%d "
                 "downloads=%d seconds=%.1f", self.run_id, len(self.result.channels),
                 sum(c.status == "ok" for c in self.result.channels),
                 sum(c.status == "refused" for c in self.result.channels),
                 sum(c.status in ("failed", "error") for c in self.result.channels), self.result.flood_waits,
                 requests, downloads, self.result.seconds)


def collect(settings: Settings, client: TelegramClient | None = None, *, since: dt.datetime | None = None,
            only: list[str] | None = None, now: dt.datetime | None = None,
            clients: Callable[[str], TelegramClient] | None = None, prefer: str | None = None) -> CollectResult:
    """Entry point shared by the CLI and the Airflow task: `client` for one account, or `clients(account)`."""
    return asyncio.run(Collector(settings, client, since=since, only=only, now=now, clients=clients,
                                 prefer=prefer).run())
