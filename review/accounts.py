"""Accounts: argon2 password hashes, login with per-account lockout and per-address throttling."""

from __future__ import annotations

import datetime as dt
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from processing.errors import BadInputError
from review.config import ReviewSettings
from storage.reviewdb import audit
from storage.reviewdb.models import ROLES, LoginThrottle, User

HASHER = PasswordHasher()
# argon2 takes ~64 MiB and ~0.2 s a check: at most this many at once per process, whoever asks.
VERIFY_SLOTS = threading.BoundedSemaphore(4)
# Verifying against this keeps the time of a login for an unknown name close to a known one's.
_DUMMY_HASH = HASHER.hash("chanwatch-timing-equaliser")
RANK = {"analyst": 1, "lead": 2, "admin": 3}


class LoginRefused(Exception):
    """Wrong name or password, a locked account, or a throttled address; the message is safe to show."""


def add_user(session: Session, name: str, role: str, password: str, settings: ReviewSettings,
             actor: str = "cli") -> User:
    """Create an account; refuses unknown roles, duplicate names and short passwords."""
    name = name.strip()
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise BadInputError(f"user name {name!r}: use 1-64 letters, digits, '.', '-' or '_'")
    if role not in ROLES:
        raise BadInputError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    if len(password) < settings.min_password_length:
        raise BadInputError(f"password too short: at least {settings.min_password_length} characters")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise BadInputError(f"user {name!r} already exists")
    user = User(name=name, role=role, password_hash=HASHER.hash(password), active=True, failed_logins=0,
                created_at=dt.datetime.now(dt.UTC))
    session.add(user)
    session.flush()
    audit.record(session, actor, "user_added", detail={"user": name, "role": role})
    return user


def _address_throttled(session: Session, address: str, settings: ReviewSettings, now: dt.datetime) -> bool:
    row = session.get(LoginThrottle, f"addr:{address}")
    if row is None or now - row.window_start > dt.timedelta(minutes=settings.address_window_minutes):
        return False
    return row.failures >= settings.address_max_failures


def _count_address_failure(session: Session, address: str, settings: ReviewSettings, now: dt.datetime) -> None:
    row = session.get(LoginThrottle, f"addr:{address}")
    if row is None:
        session.add(LoginThrottle(key=f"addr:{address}", failures=1, window_start=now))
    elif now - row.window_start > dt.timedelta(minutes=settings.address_window_minutes):
        row.failures, row.window_start = 1, now
    else:
        row.failures += 1


def authenticate(session: Session, name: str, password: str, address: str, settings: ReviewSettings,
                 now: dt.datetime | None = None) -> User:
    """The user, or LoginRefused. Commits the failure counters itself so a refused login still counts."""
    now = now or dt.datetime.now(dt.UTC)
    if _address_throttled(session, address, settings, now):
        audit.record(session, name[:64] or "?", "login_throttled", detail={"address": address})
        session.commit()
        raise LoginRefused("Too many failed logins from this address. Try again later.")
    user = session.scalar(select(User).where(User.name == name))
    if user is not None and user.locked_until and user.locked_until > now:
        audit.record(session, user.name, "login_locked", detail={"address": address})
        session.commit()
        raise LoginRefused("This account is locked after repeated failed logins. Try again later "
                           "or ask an admin.")
    ok = False
    try:
        with VERIFY_SLOTS:
            ok = HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.active:
        _count_address_failure(session, address, settings, now)
        if user is not None:
            user.failed_logins += 1
            if user.failed_logins >= settings.max_failed_logins:
                user.locked_until = now + dt.timedelta(minutes=settings.lockout_minutes)
                user.failed_logins = 0
                audit.record(session, user.name, "account_locked", detail={"address": address})
        audit.record(session, name[:64] or "?", "login_failed", detail={"address": address})
        session.commit()
        raise LoginRefused("Wrong name or password.")
    user.failed_logins, user.locked_until = 0, None
    if HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = HASHER.hash(password)
    audit.record(session, user.name, "login", detail={"address": address})
    return user


def unlock(session: Session, user: User, actor: str) -> None:
    user.locked_until, user.failed_logins = None, 0
    audit.record(session, actor, "account_unlocked", detail={"user": user.name})
