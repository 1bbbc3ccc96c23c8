"""Telegram accounts: their Airflow names, their health, and which channels each reads.

`[telegram] accounts` names the accounts (default: one, `default`). Account `<name>` uses the Airflow
connection `telegram_<name>` and the pool `telegram_api_<name>`, except `default`, whose pool is
`telegram_api`. Channels go to accounts by rendezvous hashing (processing.assignment), skipping accounts
that are out: banned (a permanent authorisation error) or flood-waited (a FloodWait of at least
`account_flood_threshold` seconds, until it ends). Health is a small JSON file per account under
`<storage>/_state/telegram/accounts/`, written atomically; delete a banned account's file once its session
is replaced. No secret is ever part of it.

Light on purpose (no Telethon, no pyarrow at import): the collect DAG reads the names at parse time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from processing.assignment import assign, choose_account

log = logging.getLogger("chanwatch.accounts")
DEFAULT_ACCOUNT = "default"


def connection_id(account: str) -> str:
    return f"telegram_{account}"


def pool_name(account: str) -> str:
    return "telegram_api" if account == DEFAULT_ACCOUNT else f"telegram_api_{account}"


def collect_task_id(account: str) -> str:
    return "collect_channel" if account == DEFAULT_ACCOUNT else f"collect_channel_{account}"


def channels_task_id(account: str) -> str:
    return "channels" if account == DEFAULT_ACCOUNT else f"channels_{account}"


@dataclass(frozen=True)
class AccountHealth:
    account: str
    status: str  # banned or flood_wait
    since: dt.datetime
    until: dt.datetime | None = None  # flood_wait: back in rotation from then
    reason: str = ""

    def out_at(self, when: dt.datetime) -> bool:
        """Whether the account is out of rotation at `when`: banned, or flood-waited until after `when`."""
        return self.status == "banned" or (self.until is not None and self.until > when)


def _path(store: Any, account: str) -> Any:
    return store.state_path("telegram", "accounts", f"{account}.json")


def read_health(store: Any, account: str) -> AccountHealth | None:
    path = _path(store, account)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        until = dt.datetime.fromisoformat(data["until"]) if data.get("until") else None
        return AccountHealth(account, data["status"], dt.datetime.fromisoformat(data["since"]), until,
                             data.get("reason", ""))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("event=accounts.bad_state account=%s error=%r (ignored)", account, str(exc))
        return None


def record_health(store: Any, health: AccountHealth) -> None:
    """Write the account's state atomically; a ban is never shortened into a flood wait."""
    from storage.files import write_bytes_atomic

    current = read_health(store, health.account)
    if current is not None and current.status == "banned" and health.status != "banned":
        return
    if (current is not None and health.status == "flood_wait" and current.status == "flood_wait"
            and current.until and health.until and current.until > health.until):
        return
    data = {"account": health.account, "status": health.status, "since": health.since.isoformat(),
            "until": health.until.isoformat() if health.until else None, "reason": health.reason}
    write_bytes_atomic(_path(store, health.account), json.dumps(data, indent=2).encode())
    log.warning("event=accounts.out account=%s status=%s until=%s reason=%r", health.account, health.status,
                data["until"], health.reason)


def available_accounts(store: Any, accounts: Sequence[str], when: dt.datetime) -> list[str]:
    """The accounts in rotation at `when`."""
    out = []
    for account in accounts:
        health = read_health(store, account)
        if health is None or not health.out_at(when):
            out.append(account)
    return out


def plan(settings: Any, when: dt.datetime) -> dict[str, list[str]]:
    """{account: allowlisted usernames it reads} as of `when`, every configured account included."""
    from storage.store import Store

    accounts = settings.telegram.accounts
    available = available_accounts(Store(settings.storage_root), accounts, when)
    result = assign([entry.username for entry in settings.allowlist], accounts, available)
    log.info("event=collect.plan %s out=%s", " ".join(f"{a}={len(c)}" for a, c in result.items()),
             ",".join(sorted(set(accounts) - set(available))) or "none")
    return result


def account_for(settings: Any, username: str, when: dt.datetime, prefer: str | None = None) -> str:
    """The account that reads `username` now: `prefer` while it is in rotation, else the channel's next."""
    from storage.store import Store

    accounts = settings.telegram.accounts
    return choose_account(username, accounts, available_accounts(Store(settings.storage_root), accounts, when),
                          prefer)
