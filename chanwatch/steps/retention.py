"""Data protection on the stored messages: text retention and the author-names policy.

`message_policy` builds the one transform every writer of `messages` applies before staging (the
export import and live collection pass it to their `DatasetWriter`), so a re-imported or re-collected
old message never brings purged text back and never stores a name the policy forbids.

`purge_expired` applies the same transform to rows already stored: text and raw record of messages
older than `[privacy] retain_text_days`, and names written before `author_names` was switched on.
Only files with a row to change are rewritten, through one storage transaction (staged, journaled,
renamed into place), so a crash leaves either the old or the new files, and a second run rewrites
nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections import Counter
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from chanwatch.runs import new_run_id, now_utc
from chanwatch.settings import Settings
from processing.errors import BadInputError
from processing.privacy import AUTHOR_NAME_COLUMNS, PURGED_COLUMNS, MessagePolicy
from storage.checkpoints import write_run_report
from storage.objectstore import StoragePath, parquet_metadata, read_parquet, relative_key
from storage.privacy_key import load_or_create_key
from storage.schemas import MESSAGES
from storage.store import Store

log = logging.getLogger("chanwatch.retention")
KEY_ENV = "CHANWATCH_PRIVACY_KEY"
MIN_KEY_CHARS = 16


def privacy_key(store: Store, environ: Mapping[str, str] | None = None) -> bytes:
    """`CHANWATCH_PRIVACY_KEY` if set, else the storage root's own key (created on first use)."""
    env = os.environ if environ is None else environ
    given = env.get(KEY_ENV)
    if given is not None:
        if len(given) < MIN_KEY_CHARS:
            raise BadInputError(f"{KEY_ENV} is too short: use at least {MIN_KEY_CHARS} random characters "
                                "(e.g. `openssl rand -hex 32`)")
        return given.encode("utf-8")
    return load_or_create_key(store)


def retention_cutoff(settings: Settings, now: dt.datetime | None = None) -> dt.datetime | None:
    """Messages dated before this lose their text; None when text is kept for good."""
    days = settings.privacy.retain_text_days
    if days <= 0:
        return None
    return (now or now_utc()) - dt.timedelta(days=days)


def message_policy(settings: Settings, store: Store, now: dt.datetime | None = None) -> MessagePolicy:
    """The privacy transform for `messages` rows written at `now` (call it under the writer lock)."""
    mode = settings.privacy.author_names
    cutoff = retention_cutoff(settings, now)
    return MessagePolicy(
        author_names=mode,
        key=privacy_key(store) if mode == "pseudonymise" else None,
        purge_before_micros=None if cutoff is None else int(cutoff.timestamp() * 1_000_000))


def _nothing_expired_or_left(path: StoragePath, policy: MessagePolicy) -> bool:
    """From the footer's statistics alone: per row group, every row is newer than the cutoff, or the
    purged columns are already null throughout (so reading the file would change nothing)."""
    metadata = parquet_metadata(path)
    names = metadata.schema.names
    date_i = names.index("date")
    purged_i = [names.index(n) for n in PURGED_COLUMNS if n in names]
    cutoff = dt.datetime.fromtimestamp(policy.purge_before_micros / 1_000_000, dt.UTC)
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        stats = group.column(date_i).statistics
        if stats is None or not stats.has_min_max:
            return False
        if stats.min >= cutoff:
            continue  # nothing expired in this group
        # Leaf columns of a list are reported per leaf; all of them must be entirely null.
        leaves = [group.column(i) for i in range(group.num_columns)
                  if group.column(i).path_in_schema.split(".")[0] in PURGED_COLUMNS]
        if len(leaves) < len(purged_i) or any(c.statistics is None or c.statistics.null_count != group.num_rows
                                              for c in leaves):
            return False
    return True


def _count_changes(before: pa.Table, after: pa.Table, counts: Counter) -> None:
    lost = pc.and_(pc.is_valid(before["raw_json"]), pc.is_null(after["raw_json"]))
    lost_text = pc.and_(pc.is_valid(before["text"]), pc.is_null(after["text"]))
    counts["rows_text_purged"] += pc.sum(pc.or_(lost, lost_text).cast(pa.int64())).as_py() or 0
    renamed = pa.repeat(False, before.num_rows)
    for name in AUTHOR_NAME_COLUMNS:
        differs = pc.fill_null(pc.not_equal(before[name], after[name]),
                               pc.is_valid(before[name]))  # a name dropped to null differs too
        renamed = pc.or_(renamed, differs)
    counts["rows_names_changed"] += pc.sum(renamed.cast(pa.int64())).as_py() or 0


def purge_expired(settings: Settings, now: dt.datetime | None = None) -> dict[str, int]:
    """Apply retention and the author-names policy to the stored messages; returns counts.

    Counts: `files_scanned`, `files_rewritten`, `rows_changed`, `rows_text_purged` (text and raw
    record cleared), `rows_names_changed`. A second run with the same settings rewrites nothing.
    """
    now = now or now_utc()
    counts: Counter[str] = Counter({"files_scanned": 0, "files_rewritten": 0, "rows_changed": 0,
                                    "rows_text_purged": 0, "rows_names_changed": 0})
    if settings.privacy.retain_text_days <= 0 and settings.privacy.author_names == "keep":
        log.info("event=retention.done %s reason=%r", _fmt(counts), "text kept for good, names kept")
        return dict(counts)
    store = Store(settings.storage_root)
    run_id = new_run_id("retention")
    with store.writer_lock():
        policy = message_policy(settings, store, now)
        txn = store.begin(run_id)
        try:
            for path in store.list_files(MESSAGES):
                counts["files_scanned"] += 1
                if policy.author_names == "keep" and _nothing_expired_or_left(path, policy):
                    continue
                stored = read_parquet(path, schema=MESSAGES.schema)
                purged = policy.apply(stored)
                if purged is stored:
                    continue
                changed = txn.stage(MESSAGES, relative_key(path, store.root), purged)
                if changed:
                    counts["files_rewritten"] += 1
                    counts["rows_changed"] += changed
                    _count_changes(stored, purged, counts)
            txn.commit()
        except BaseException:
            txn.abort()
            raise
    if counts["files_rewritten"]:
        cutoff = retention_cutoff(settings, now)
        write_run_report(store, run_id, {
            "run_id": run_id, "step": "retention", "now": now.isoformat(),
            "text_cutoff": cutoff.isoformat() if cutoff else None,
            "author_names": settings.privacy.author_names, "counts": dict(counts)})
    log.info("event=retention.done run_id=%s %s", run_id, _fmt(counts))
    return dict(counts)


def _fmt(counts: Counter) -> str:
    return " ".join(f"{k}={v}" for k, v in counts.items())


def purge_review_text(settings: Settings, now: dt.datetime | None = None) -> int:
    """The review database keeps a copy of each matched message's text: the same retention applies to it."""
    cutoff = retention_cutoff(settings, now or now_utc())
    if cutoff is None:
        return 0
    from sqlalchemy import update

    from chanwatch.steps.review_db import open_review_db
    from storage.reviewdb.models import Item

    engine = open_review_db(settings)
    try:
        with engine.begin() as connection:
            purged = connection.execute(update(Item).where(Item.message_date < cutoff, Item.message_text.is_not(None))
                                        .values(message_text=None)).rowcount
    finally:
        engine.dispose()
    log.info("event=retention.review review_texts_purged=%d", purged)
    return purged


def apply_data_protection(settings: Settings, now: dt.datetime | None = None) -> dict[str, int]:
    """Everything the [privacy] settings ask of stored data: the messages dataset and the review copy."""
    counts = purge_expired(settings, now)
    counts["review_texts_purged"] = purge_review_text(settings, now)
    return counts
