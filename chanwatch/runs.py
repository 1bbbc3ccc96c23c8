"""Run identity and time stamps, shared by every step."""

from __future__ import annotations

import datetime as dt
import secrets


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def now_micros() -> int:
    """Now, UTC, in microseconds: how the datasets' timestamp columns are filled."""
    return int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)


def new_run_id(kind: str) -> str:
    return f"{kind}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
