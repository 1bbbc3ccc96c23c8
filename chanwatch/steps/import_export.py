"""The `import-export` step: a Telegram Desktop export into the messages, media and channels datasets.

Everything the run writes is staged and committed at the end, so a rejected export (truncated,
not a public channel, not allowlisted) leaves the datasets exactly as they were, and a run killed
at any point is completed by the next one. Re-importing the same export changes no row.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from chanwatch.runs import new_run_id, now_micros
from chanwatch.settings import AllowlistEntry, Settings
from chanwatch.steps.media_rows import MediaHasher
from chanwatch.steps.retention import message_policy
from collectors.export.reader import (
    MESSAGE_SEPARATOR,
    ChatEnd,
    ChatStart,
    ExportItem,
    FastPathMismatch,
    RawBlock,
    RawMessage,
    iter_fast,
    iter_general,
)
from processing.errors import BadInputError
from processing.export_records import (
    ExportNormaliser,
    MalformedBatchError,
    NormalisedBatch,
    RunContext,
    block_lines,
    first_malformed,
)
from processing.privacy import MessagePolicy
from storage.checkpoints import write_checkpoint, write_run_report
from storage.media_index import known_media
from storage.schemas import BUCKET_SIZE, CHANNELS, MEDIA, MESSAGES, DatasetSpec
from storage.store import Store, Transaction
from storage.writer import DatasetWriter, channel_file, message_file, month_of_micros

log = logging.getLogger("chanwatch.import")
LIST_BATCH = 10_000
MAX_REPORTED_REJECTS = 1000
ProgressCallback = Callable[[int], None]


@dataclass
class ImportResult:
    run_id: str
    export_file: Path
    channels: list[dict[str, Any]] = field(default_factory=list)
    skipped_chats: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    reader: str = "fast"


def locate_export(path: Path) -> tuple[Path, Path]:
    """(export folder, result.json) from either of them."""
    if "\x00" in str(path):
        raise BadInputError("export path contains a NUL byte")
    if path.is_dir():
        json_file = path / "result.json"
        if not json_file.is_file():
            raise BadInputError(f"{path}: no result.json in this folder (is it a Telegram Desktop "
                                "JSON export?)")
        return path, json_file
    if path.is_file():
        return path.parent, path
    raise BadInputError(f"{path}: no such file or folder")


class _ChatImport:
    """State for the chat being imported: its allowlist entry, counters and newest message."""

    def __init__(self, header: dict[str, Any], entry: AllowlistEntry, channel_id: int) -> None:
        self.header = header
        self.entry = entry
        self.channel_id = channel_id
        self.messages = 0
        self.last_message_id = 0
        self.newest_micros: int | None = None
        self.known_media: dict[tuple[int, int], dict[str, Any]] = {}


class ExportImporter:
    """One import run. Use `run()`; the rest is its parts."""

    def __init__(self, settings: Settings, path: Path, progress: ProgressCallback | None = None,
                 now: dt.datetime | None = None) -> None:
        self.settings = settings
        self.export_dir, self.json_file = locate_export(path)
        self.store = Store(settings.storage_root)
        self.progress = progress
        self.now = now  # the clock for retention (tests pin it); None: the time of the run
        self.policy = MessagePolicy()
        self.result = ImportResult(new_run_id("import"), self.json_file)

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> ImportResult:
        with self.store.writer_lock():
            self.policy = message_policy(self.settings, self.store, self.now)
            try:
                self._attempt(iter_fast(self.json_file, on_bytes=self.progress))
            except FastPathMismatch as mismatch:
                log.info("event=import.reader_fallback reason=%r line=%s", str(mismatch), mismatch.line)
                self.result = ImportResult(self.result.run_id, self.json_file, reader="general")
                try:
                    self._attempt(iter_general(self.json_file, on_bytes=self.progress))
                except BadInputError as exc:
                    if mismatch.line is not None and ("JSON" in str(exc) or "end of file" in str(exc)):
                        raise BadInputError(f"{self.json_file}:{mismatch.line}: {mismatch}; nothing was "
                                            "imported") from None
                    raise
        self._log_summary()
        return self.result

    def _attempt(self, items: Iterator[ExportItem]) -> None:
        txn = self.store.begin(self.result.run_id)
        try:
            chats = self._consume(items, txn)
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        for chat in chats:
            write_checkpoint(self.store, "export-import", str(chat.channel_id), {
                "channel_id": chat.channel_id, "username": chat.entry.username,
                "export_file": str(self.json_file), "last_message_id": chat.last_message_id,
                "messages": chat.messages, "run_id": self.result.run_id,
                "completed_at": dt.datetime.now(dt.UTC).isoformat()})
        write_run_report(self.store, self.result.run_id, {
            "run_id": self.result.run_id, "step": "import-export", "export_file": str(self.json_file),
            "reader": self.result.reader, "counts": dict(self.result.counts),
            "channels": self.result.channels, "skipped_chats": self.result.skipped_chats,
            "rejects": self.result.rejects[:MAX_REPORTED_REJECTS],
            "rejects_total": len(self.result.rejects)})

    def _consume(self, items: Iterator[ExportItem], txn: Transaction) -> list[_ChatImport]:
        writers = {spec.name: DatasetWriter(txn, spec, self.policy.apply if spec is MESSAGES else None)
                   for spec in (MESSAGES, MEDIA, CHANNELS)}
        normaliser = ExportNormaliser()
        self.media_hasher = MediaHasher(self.export_dir, self.settings.imports.max_media_bytes, self.settings.hashing,
                                        self.result.run_id, self.result.counts)
        collected_at = now_micros()
        chat: _ChatImport | None = None
        done: list[_ChatImport] = []
        pending: list[RawMessage] = []
        seen_chat = False
        try:
            for item in items:
                if isinstance(item, RawBlock):
                    if chat is not None:
                        self._block(item, chat, normaliser, writers, collected_at)
                elif isinstance(item, RawMessage):
                    if chat is not None and not isinstance(item.data, dict):
                        self.result.counts["messages_read"] += 1
                        self._reject(item.line, None, f"message is a JSON {type(item.data).__name__}, "
                                     "not an object")
                    elif chat is not None:
                        pending.append(item)
                        if len(pending) >= LIST_BATCH:
                            self._list(pending, chat, normaliser, writers, collected_at)
                            pending = []
                elif isinstance(item, ChatStart):
                    seen_chat = True
                    chat = self._admit_chat(item)
                elif isinstance(item, ChatEnd) and chat is not None:
                    self._list(pending, chat, normaliser, writers, collected_at)
                    pending = []
                    self._channel_snapshot(chat, writers[CHANNELS.name], collected_at)
                    done.append(chat)
                    chat = None
            if not seen_chat:
                raise BadInputError(f"{self.json_file}: not a Telegram Desktop export (no chat and no "
                                    "messages found)")
            for writer in writers.values():
                writer.close()
        except BaseException:
            for writer in writers.values():
                writer.abandon()
            raise
        finally:
            normaliser.close()
            self.media_hasher.close()
        counts = self.result.counts
        counts["messages_written"] = writers[MESSAGES.name].rows_changed
        counts["media_rows_written"] = writers[MEDIA.name].rows_changed
        counts["files_staged"] = sum(len(w.files) for w in writers.values())
        return done

    def _context(self, chat: _ChatImport, collected_at: int) -> RunContext:
        return RunContext(chat.channel_id, chat.entry.username, collected_at, self.result.run_id, BUCKET_SIZE)

    def _block(self, block: RawBlock, chat: _ChatImport, normaliser: ExportNormaliser,
               writers: dict[str, DatasetWriter], collected_at: int) -> None:
        try:
            batch = normaliser.normalise_block(block.data, MESSAGE_SEPARATOR, self._context(chat, collected_at))
        except UnicodeDecodeError:
            raise FastPathMismatch("not valid UTF-8", block.first_line) from None
        except MalformedBatchError:  # not valid JSON, or the split was not structural here
            position, offset, reason = first_malformed(block.data, MESSAGE_SEPARATOR)
            line = block_lines(block.data, MESSAGE_SEPARATOR, block.first_line, [position]).get(position)
            raise FastPathMismatch(f"invalid JSON: {reason}", line + offset if line else None) from None
        if batch.rejects:
            lines = block_lines(block.data, MESSAGE_SEPARATOR, block.first_line,
                                [r["line"] for r in batch.rejects])
            for reject in batch.rejects:
                reject["line"] = lines.get(reject["line"])
        self._store_batch(batch, chat, writers)

    def _list(self, pending: list[RawMessage], chat: _ChatImport, normaliser: ExportNormaliser,
              writers: dict[str, DatasetWriter], collected_at: int) -> None:
        if not pending:
            return
        raw = [orjson.dumps(item.data) for item in pending]
        batch = normaliser.normalise_list(raw, [item.line for item in pending], self._context(chat, collected_at))
        self._store_batch(batch, chat, writers)

    def _store_batch(self, batch: NormalisedBatch, chat: _ChatImport, writers: dict[str, DatasetWriter]) -> None:
        counts = self.result.counts
        messages = batch.messages
        counts["messages_read"] += messages.num_rows + len(batch.rejects)
        for reject in batch.rejects:
            self._reject(reject["line"], reject["message_id"], reject["error"])
        if messages.num_rows:
            chat.messages += messages.num_rows
            chat.last_message_id = max(chat.last_message_id, pc.max(messages["message_id"]).as_py())
            newest = pc.max(messages["date"]).cast(pa.int64()).as_py()
            chat.newest_micros = max(chat.newest_micros or 0, newest)
            for rel, rows in _split_by_file(MESSAGES, chat.channel_id, messages):
                writers[MESSAGES.name].add_table(rel, rows.select(MESSAGES.schema.names))
        rows = self.media_hasher.rows(batch.media, chat.channel_id, chat.known_media)
        for media, row in zip(batch.media, rows, strict=True):
            writers[MEDIA.name].add(message_file(MEDIA, chat.channel_id, media["month"], media["bucket"]), row)

    # -- chats -----------------------------------------------------------------------------------
    def _admit_chat(self, start: ChatStart) -> _ChatImport | None:
        """Admit a public, allowlisted channel; refuse (single chat) or skip (account export) others."""
        header = start.header
        name, kind, chat_id = header.get("name"), header.get("type"), header.get("id")
        where = f"{self.json_file}:{start.line}" if start.line else str(self.json_file)
        problem = None
        entry = None
        if kind != "public_channel":
            problem = (f"chat {name!r} is a {kind or 'chat of unknown type'}; only public broadcast "
                       "channels are imported")
        elif type(chat_id) is not int or chat_id <= 0:
            problem = f"chat {name!r} has no valid numeric 'id'"
        else:
            entry = self.settings.channel_by_id(chat_id)
            if entry is None:
                problem = (f"channel {name!r} (id {chat_id}) is not on the allowlist; add it to "
                           f"[[channels]] with channel_id = {chat_id}, a basis and an approver")
        if problem is None and entry is not None:
            self.result.channels.append({"channel_id": chat_id, "username": entry.username, "title": name})
            chat = _ChatImport(header, entry, chat_id)
            chat.known_media = known_media(self.store, chat_id)
            return chat
        if not start.account_export:
            raise BadInputError(f"{where}: {problem}; nothing was imported")
        self.result.skipped_chats.append({"name": name, "type": kind, "id": chat_id, "reason": problem})
        self.result.counts["chats_skipped"] += 1
        log.info("event=import.chat_skipped type=%s reason=%r", kind, problem)
        return None

    def _channel_snapshot(self, chat: _ChatImport, writer: DatasetWriter, collected_at: int) -> None:
        snapshot_at = chat.newest_micros or collected_at
        day = dt.datetime.fromtimestamp(snapshot_at / 1_000_000, dt.UTC).date()
        writer.add(channel_file(CHANNELS, chat.channel_id, month_of_micros(snapshot_at)), {
            "channel_id": chat.channel_id, "snapshot_date": day, "username": chat.entry.username,
            "title": chat.header.get("name") if isinstance(chat.header.get("name"), str) else None,
            "message_count": chat.messages, "source": "export", "snapshot_at": snapshot_at,
            "run_id": self.result.run_id})

    # -- rejects and media ----------------------------------------------------------------------
    def _reject(self, line: int | None, message_id: Any, reason: str) -> None:
        record = {"file": str(self.json_file), "line": line, "message_id": message_id, "reason": reason}
        self.result.rejects.append(record)
        self.result.counts["messages_rejected"] += 1
        if len(self.result.rejects) <= 20:
            log.warning("event=import.message_rejected file=%s line=%s message_id=%s reason=%r",
                        self.json_file, line, message_id, reason)

    def _log_summary(self) -> None:
        c = self.result.counts
        log.info("event=import.done run_id=%s reader=%s channels=%d chats_skipped=%d messages_read=%d "
                 "messages_written=%d messages_rejected=%d media_hashed=%d media_skipped=%d "
                 "media_failed=%d media_reused=%d files_staged=%d", self.result.run_id, self.result.reader,
                 len(self.result.channels), c["chats_skipped"], c["messages_read"], c["messages_written"],
                 c["messages_rejected"], c["media_hashed"], c["media_skipped"], c["media_failed"], c["media_reused"],
                 c["files_staged"])


def _split_by_file(spec: DatasetSpec, channel_id: int, rows: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """Group rows by their (month, bucket) file; inputs are mostly sorted, so groups are few."""
    keys = pa.table({"month": rows["month"], "bucket": rows["bucket"]}).group_by(
        ["month", "bucket"], use_threads=False).aggregate([])
    for month, bucket in zip(keys["month"].to_pylist(), keys["bucket"].to_pylist(), strict=True):
        mask = pc.and_(pc.equal(rows["month"], month), pc.equal(rows["bucket"], bucket))
        yield message_file(spec, channel_id, month, bucket), rows.filter(mask)


def import_export(settings: Settings, path: Path, progress: ProgressCallback | None = None, *,
                  now: dt.datetime | None = None) -> ImportResult:
    """Entry point shared by the CLI and (later) the Airflow task. `now` pins the retention clock."""
    return ExportImporter(settings, path, progress, now).run()
