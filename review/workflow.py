"""The review workflow: claims, decisions, the four-eyes approval, referrals, removal and notices.

Every state change writes an audit entry in the same transaction, so the log and the state never
disagree. Rules live here, not in the web layer, so the model tests cover them on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from review.accounts import RANK
from review.config import ReviewSettings
from storage.reviewdb import audit
from storage.reviewdb.models import Item, Notice, Referral, ReferralItem, User

DECISIONS = {"confirm": "confirmed", "reject": "rejected", "escalate": "escalated"}
OPEN = ("new", "escalated")


class WorkflowError(Exception):
    """An action the rules do not allow; the message says why and is shown to the user."""


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def can(user: User, role: str) -> bool:
    return RANK.get(user.role, 0) >= RANK[role]


def claim(session: Session, item_id: int, user: User, settings: ReviewSettings,
          now: dt.datetime | None = None) -> Item:
    """Claim an open item for `claim_minutes`; one conditional UPDATE, so two analysts cannot both win."""
    now = now or now_utc()
    until = now + dt.timedelta(minutes=settings.claim_minutes)
    statuses = OPEN if can(user, "lead") else ("new",)
    session.flush()  # the conditional UPDATE below must see this session's own pending changes
    result = session.execute(
        update(Item).where(Item.id == item_id, Item.status.in_(statuses),
                           or_(Item.claimed_by_id.is_(None), Item.claimed_until < now, Item.claimed_by_id == user.id))
        .values(claimed_by_id=user.id, claimed_until=until).execution_options(synchronize_session=False))
    item = session.get(Item, item_id, populate_existing=True)
    if item is None:
        raise WorkflowError(f"item {item_id} does not exist")
    if result.rowcount != 1:
        if item.status == "escalated" and "escalated" not in statuses:
            raise WorkflowError(f"item {item_id} is escalated: a lead reviews it")
        if item.status not in OPEN:
            raise WorkflowError(f"item {item_id} is already {item.status}")
        holder = item.claimed_by.name if item.claimed_by else "someone"
        raise WorkflowError(f"item {item_id} is being reviewed by {holder} until "
                            f"{item.claimed_until:%H:%M} UTC")
    audit.record(session, user.name, "claim", item_id=item_id, at=now)
    return item


def claim_next(session: Session, user: User, settings: ReviewSettings, item_ids: list[int]) -> Item | None:
    """Claim the first of `item_ids` (the queue's order) that nobody else holds."""
    for item_id in item_ids:
        try:
            return claim(session, item_id, user, settings)
        except WorkflowError:
            continue
    return None


def release(session: Session, item: Item, user: User) -> None:
    if item.claimed_by_id == user.id:
        item.claimed_by_id, item.claimed_until = None, None
        audit.record(session, user.name, "release", item_id=item.id)


def holds_claim(item: Item, user: User, now: dt.datetime | None = None) -> bool:
    now = now or now_utc()
    return item.claimed_by_id == user.id and item.claimed_until is not None and item.claimed_until > now


def decide(session: Session, item: Item, user: User, decision: str, reason: str,
           now: dt.datetime | None = None) -> None:
    """Confirm, reject or escalate an item the user holds; escalated items are decided by a lead."""
    now = now or now_utc()
    if decision not in DECISIONS:
        raise WorkflowError(f"unknown decision {decision!r}")
    reason = reason.strip()
    if not reason:
        raise WorkflowError("a decision needs a reason")
    if item.status not in OPEN:
        raise WorkflowError(f"item {item.id} is already {item.status}")
    if item.status == "escalated" and not can(user, "lead"):
        raise WorkflowError("an escalated item is decided by a lead")
    if item.status == "escalated" and decision == "escalate":
        raise WorkflowError("the item is already escalated")
    if not holds_claim(item, user, now):
        raise WorkflowError("claim the item before deciding (your claim may have expired)")
    item.status = DECISIONS[decision]
    item.decided_by_id, item.decided_at, item.decision_reason = user.id, now, reason
    item.claimed_by_id, item.claimed_until = None, None
    audit.record(session, user.name, decision, item_id=item.id, reason=reason, at=now)


def confirm_reappearance(session: Session, item: Item, user: User, now: dt.datetime | None = None) -> None:
    """One step for material already confirmed and referred before: confirm, pending a lead's approval."""
    now = now or now_utc()
    earlier = item.reappearance_of
    if earlier is None:
        raise WorkflowError(f"item {item.id} is not a reappearance")
    if item.status not in OPEN:
        raise WorkflowError(f"item {item.id} is already {item.status}")
    reason = f"reappearance of item {earlier.id}, confirmed on {earlier.decided_at:%Y-%m-%d}"
    refs = earlier_referrals(session, earlier.id)
    if refs:
        reason += f" (referral {', '.join(refs)})"
    item.status, item.decided_by_id, item.decided_at, item.decision_reason = "confirmed", user.id, now, reason
    item.claimed_by_id, item.claimed_until = None, None
    audit.record(session, user.name, "confirm_reappearance", item_id=item.id, reason=reason,
                 detail={"earlier_item_id": earlier.id}, at=now)


def earlier_referrals(session: Session, item_id: int) -> list[str]:
    return list(session.scalars(select(Referral.reference).join(ReferralItem)
                                .where(ReferralItem.item_id == item_id).order_by(Referral.id)))


def approve(session: Session, item: Item, lead: User, now: dt.datetime | None = None) -> None:
    """The four-eyes rule: a lead who did not confirm the item approves it for referral."""
    now = now or now_utc()
    if not can(lead, "lead"):
        raise WorkflowError("only a lead approves referrals")
    if item.status != "confirmed":
        raise WorkflowError(f"item {item.id} is {item.status}, not confirmed")
    if item.decided_by_id == lead.id:
        raise WorkflowError("four-eyes rule: the lead who approves must not be the one who confirmed")
    item.status, item.approved_by_id, item.approved_at = "approved", lead.id, now
    audit.record(session, lead.name, "approve", item_id=item.id, at=now)


def create_referral(session: Session, lead: User, item_ids: list[int], recipient: str,
                    now: dt.datetime | None = None) -> Referral:
    """Batch approved items into a referral with a reference id per item."""
    now = now or now_utc()
    if not can(lead, "lead"):
        raise WorkflowError("only a lead creates referrals")
    recipient = recipient.strip()
    if not recipient:
        raise WorkflowError("a referral needs a recipient")
    items = session.scalars(select(Item).where(Item.id.in_(item_ids)).order_by(Item.id)).all()
    if not items:
        raise WorkflowError("select at least one approved item")
    not_ready = [i.id for i in items if i.status != "approved"]
    if not_ready:
        raise WorkflowError(f"items {not_ready} are not approved")
    number = (session.scalar(select(func.count(Referral.id))) or 0) + 1
    referral = Referral(reference=f"CW-{now:%Y%m%d}-{number:04d}", recipient=recipient, created_by_id=lead.id,
                        created_at=now)
    session.add(referral)
    session.flush()
    for n, item in enumerate(items, 1):
        session.add(ReferralItem(referral_id=referral.id, item_id=item.id,
                                 reference_id=f"{referral.reference}-{n:03d}"))
        item.status = "referred"
    audit.record(session, lead.name, "create_referral", referral_id=referral.id,
                 detail={"reference": referral.reference, "items": [i.id for i in items], "recipient": recipient},
                 at=now)
    return referral


def mark_sent(session: Session, referral: Referral, lead: User, now: dt.datetime | None = None) -> None:
    """Record when the referral went out; that is the first notice of each item and the removal clock's start."""
    now = now or now_utc()
    if not can(lead, "lead"):
        raise WorkflowError("only a lead sends referrals")
    if referral.sent_at is not None:
        raise WorkflowError(f"referral {referral.reference} was already sent on {referral.sent_at:%Y-%m-%d %H:%M}")
    referral.sent_at, referral.sent_by_id = now, lead.id
    for ri in referral.items:
        session.add(Notice(referral_item_id=ri.id, kind="initial", sent_at=now))
    audit.record(session, lead.name, "referral_sent", referral_id=referral.id,
                 detail={"reference": referral.reference}, at=now)


REMOVED_STATUSES = {"deleted", "channel_gone"}


def record_check(session: Session, ri: ReferralItem, status: str, now: dt.datetime, detail: str | None = None) -> bool:
    """Store one re-check result; the first time an item is found gone sets `removed_at`. True if newly removed."""
    ri.last_checked_at, ri.last_check_status = now, status
    if status in REMOVED_STATUSES and ri.removed_at is None:
        ri.removed_at, ri.removal_status = now, status
        audit.record(session, "recheck", "removed", item_id=ri.item_id, referral_id=ri.referral_id,
                     detail={"reference_id": ri.reference_id, "status": status, "detail": detail}, at=now)
        return True
    return False


def open_referral_items(session: Session) -> list[ReferralItem]:
    """Items of sent referrals that are not yet known to be removed: what the re-check visits."""
    return list(session.scalars(select(ReferralItem).join(Referral).where(
        Referral.sent_at.is_not(None), ReferralItem.removed_at.is_(None)).order_by(ReferralItem.id)))


def due_renotices(session: Session, settings: ReviewSettings, now: dt.datetime) -> list[ReferralItem]:
    """Items still online whose latest notice is older than the re-notification interval."""
    last = (select(Notice.referral_item_id, func.max(Notice.sent_at).label("last_sent"))
            .group_by(Notice.referral_item_id).subquery())
    cutoff = now - dt.timedelta(hours=settings.renotify_hours)
    return list(session.scalars(select(ReferralItem).join(last, last.c.referral_item_id == ReferralItem.id)
                                .where(and_(ReferralItem.removed_at.is_(None), last.c.last_sent <= cutoff,
                                            ReferralItem.last_check_status == "online"))
                                .order_by(ReferralItem.id)))


def record_renotice(session: Session, ri: ReferralItem, now: dt.datetime) -> Notice:
    notice = Notice(referral_item_id=ri.id, kind="renotice", sent_at=now)
    session.add(notice)
    audit.record(session, "recheck", "renotice", item_id=ri.item_id, referral_id=ri.referral_id,
                 detail={"reference_id": ri.reference_id}, at=now)
    return notice


@dataclass(frozen=True)
class RemovalStats:
    referred: int
    removed: int
    open: int
    removal_rate: float | None
    median_hours_to_removal: float | None
    hours_to_removal: list[float]


def removal_stats(session: Session) -> RemovalStats:
    """Removal rate and median time from sending the referral to finding the item gone."""
    rows = session.execute(select(Referral.sent_at, ReferralItem.removed_at).join(ReferralItem)
                           .where(Referral.sent_at.is_not(None))).all()
    hours = sorted((removed - sent).total_seconds() / 3600 for sent, removed in rows if removed is not None)
    referred = len(rows)
    return RemovalStats(referred=referred, removed=len(hours), open=referred - len(hours),
                        removal_rate=len(hours) / referred if referred else None,
                        median_hours_to_removal=statistics.median(hours) if hours else None,
                        hours_to_removal=hours)
