"""The append-only audit log: who did what, when and why, hash-chained so that tampering shows.

Each entry's hash covers its own fields and the previous entry's hash. Editing, deleting or
re-ordering any entry breaks the chain from that point, which `verify_chain` reports. The
database refuses UPDATE and DELETE on the table (triggers), and `prev_hash` is unique, so two
concurrent writers cannot fork the chain: the loser's insert fails and is retried.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.reviewdb.models import AuditEntry

GENESIS = "0" * 64


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def entry_digest(prev_hash: str, seq: int, at: dt.datetime, actor: str, action: str, item_id: int | None,
                 referral_id: int | None, reason: str | None, detail: str | None) -> str:
    """SHA-256 over the previous hash and this entry's fields, in a fixed canonical form."""
    body = orjson.dumps([prev_hash, seq, at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), actor, action,
                         item_id, referral_id, reason, detail])
    return hashlib.sha256(body).hexdigest()


def record(session: Session, actor: str, action: str, *, item_id: int | None = None,
           referral_id: int | None = None, reason: str | None = None, detail: dict[str, Any] | None = None,
           at: dt.datetime | None = None) -> AuditEntry:
    """Append one entry inside the caller's transaction (so the action and its record commit together).

    The insert runs in a savepoint: when a concurrent writer took the next link first (PostgreSQL
    under READ COMMITTED), the unique `prev_hash` refuses ours, and we re-read the head and retry.
    """
    when = at or _now()
    detail_text = orjson.dumps(detail, option=orjson.OPT_SORT_KEYS).decode() if detail else None
    for _attempt in range(50):
        last = session.execute(select(AuditEntry.seq, AuditEntry.entry_hash).order_by(AuditEntry.seq.desc())
                               .limit(1)).first()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        entry = AuditEntry(seq=seq, at=when, actor=actor, action=action, item_id=item_id, referral_id=referral_id,
                           reason=reason, detail=detail_text, prev_hash=prev,
                           entry_hash=entry_digest(prev, seq, when, actor, action, item_id, referral_id, reason,
                                                   detail_text))
        try:
            with session.begin_nested():
                session.add(entry)
        except IntegrityError as exc:
            if not is_chain_conflict(exc):
                raise
            continue
        return entry
    raise RuntimeError("audit log: could not append after 50 attempts (constant contention)")


def is_chain_conflict(exc: IntegrityError) -> bool:
    """True when an insert lost the race for the next link (another writer appended first)."""
    text = str(exc.orig).lower()
    return any(key in text for key in ("prev_hash", "audit_log_pkey", "audit_log.seq", "entry_hash"))


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str


def verify_chain(session: Session, batch: int = 5000) -> tuple[int, list[ChainProblem]]:
    """Walk the whole log in order; return how many entries were checked and every break found."""
    problems: list[ChainProblem] = []
    prev, expected_seq, checked = GENESIS, 1, 0
    for entry in _entries(session, batch):
        checked += 1
        if entry.seq != expected_seq:
            problems.append(ChainProblem(entry.seq, f"sequence jumps from {expected_seq - 1} to {entry.seq} "
                                                    "(entries deleted)"))
        if entry.prev_hash != prev:
            problems.append(ChainProblem(entry.seq, "previous-hash link broken (an earlier entry was changed, "
                                                    "removed or re-ordered)"))
        digest = entry_digest(entry.prev_hash, entry.seq, entry.at, entry.actor, entry.action, entry.item_id,
                              entry.referral_id, entry.reason, entry.detail)
        if digest != entry.entry_hash:
            problems.append(ChainProblem(entry.seq, "entry hash does not match its contents (entry edited)"))
        prev, expected_seq = entry.entry_hash, entry.seq + 1
    return checked, problems


def _entries(session: Session, batch: int) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq)
                               .limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()
