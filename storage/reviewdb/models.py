"""The review database's tables (SQLAlchemy 2). Alembic migrations in `storage/reviewdb/migrations` create them.

Review state is mutable and shared by many analysts, so it lives in SQL (SQLite by default,
PostgreSQL by URL), while the Parquet datasets stay read-only for the app. An `item` is one media
item that matched (all its matches grouped), which is the unit an analyst decides on.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

ROLES = ("analyst", "lead", "admin")
# new -> confirmed | rejected | escalated; escalated -> confirmed | rejected (a lead decides);
# confirmed -> approved (a lead other than the confirmer: four eyes) -> referred (in a sent referral).
STATUSES = ("new", "escalated", "confirmed", "rejected", "approved", "referred")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps are stored as UTC and always come back timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the review database")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class LoginThrottle(Base):
    """Failed logins per client address in a sliding window: slows guessing across many names."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class WebSession(Base):
    """Server-side sessions: the cookie holds a random token, the table holds only its SHA-256."""

    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")


class Item(Base):
    """One matched media item, with the message context copied in at sync so pages need no Parquet reads."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("channel_id", "message_id", "media_index", name="uq_items_media"),
        Index("ix_items_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    media_index: Mapped[int] = mapped_column(Integer)
    media_kind: Mapped[str | None] = mapped_column(String(32))
    channel_username: Mapped[str | None] = mapped_column(String(64), index=True)
    channel_title: Mapped[str | None] = mapped_column(Text)
    allowlist_basis: Mapped[str | None] = mapped_column(Text)
    message_url: Mapped[str | None] = mapped_column(Text)
    message_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    message_text: Mapped[str | None] = mapped_column(Text)
    forward_chain: Mapped[list | None] = mapped_column(JSON)
    media_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    first_matched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    best_distance: Mapped[int] = mapped_column(Integer)
    # 1 for reappearances of confirmed material: they go to the top of the queue.
    priority: Mapped[int] = mapped_column(Integer, default=0)
    reappearance_of_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    status: Mapped[str] = mapped_column(String(16), default="new")
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    matches: Mapped[list[Match]] = relationship(back_populates="item", order_by="Match.distance")
    claimed_by: Mapped[User | None] = relationship(foreign_keys=[claimed_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    approved_by: Mapped[User | None] = relationship(foreign_keys=[approved_by_id])
    reappearance_of: Mapped[Item | None] = relationship(remote_side=[id])


# The queue's three sort orders, each an index walked in order (reappearances first), so a page is a
# range scan from the keyset cursor, however deep.
Index("ix_items_order_distance", Item.priority.desc(), Item.best_distance, Item.id)
Index("ix_items_order_oldest", Item.priority.desc(), Item.first_matched_at, Item.id)
Index("ix_items_order_newest", Item.priority.desc(), Item.first_matched_at.desc(), Item.id.desc())


class Match(Base):
    """One row of the `matches` dataset, copied by `match_id` (so a re-sync adds nothing)."""

    __tablename__ = "matches"
    __table_args__ = (Index("ix_matches_entry", "signal_type", "entry_hash"),)

    match_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    signal_type: Mapped[str] = mapped_column(String(16), index=True)
    distance: Mapped[int | None] = mapped_column(Integer)
    threshold: Mapped[int | None] = mapped_column(Integer)
    query_match_percent: Mapped[float | None]
    compared_match_percent: Mapped[float | None]
    media_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    list_name: Mapped[str] = mapped_column(String(128), index=True)
    list_version: Mapped[int] = mapped_column(Integer)
    entry_id: Mapped[str | None] = mapped_column(Text)
    entry_hash: Mapped[str] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(128), index=True)
    matched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    item: Mapped[Item] = relationship(back_populates="matches")


class Referral(Base):
    """A batch of approved items sent to the platform or regulator."""

    __tablename__ = "referrals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    recipient: Mapped[str] = mapped_column(String(128))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    items: Mapped[list[ReferralItem]] = relationship(back_populates="referral", order_by="ReferralItem.id")
    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id])


class ReferralItem(Base):
    """One referred message and its removal tracking."""

    __tablename__ = "referral_items"
    __table_args__ = (UniqueConstraint("referral_id", "item_id", name="uq_referral_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    reference_id: Mapped[str] = mapped_column(String(48), unique=True)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    removal_status: Mapped[str | None] = mapped_column(String(16))
    last_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_check_status: Mapped[str | None] = mapped_column(String(16))

    referral: Mapped[Referral] = relationship(back_populates="items")
    item: Mapped[Item] = relationship()
    notices: Mapped[list[Notice]] = relationship(back_populates="referral_item", order_by="Notice.id")


class Notice(Base):
    """A notice to the platform about a referred item: the first (when the referral is sent) and each re-notice."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    referral_item_id: Mapped[int] = mapped_column(ForeignKey("referral_items.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # initial | renotice
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    referral_item: Mapped[ReferralItem] = relationship(back_populates="notices")


class AuditEntry(Base):
    """Append-only, hash-chained log of every action: database triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32), index=True)
    item_id: Mapped[int | None] = mapped_column(Integer, index=True)
    referral_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)  # unique: two writers cannot fork the chain
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
