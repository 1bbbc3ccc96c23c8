"""What the Airflow tasks call: the same step functions as the CLI, wrapped for a scheduler.

The DAG files in `dags/` stay thin (schedule, mapping, pools, retries) and call these. Everything
heavy (Telethon, pyarrow, the hashing stack) is imported inside the functions, so parsing a DAG
file stays fast. Counts are logged per step as `key=value` lines, and returned (to XCom) for the UI.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
from typing import Any

from airflow.sdk import RetryDecision, RetryPolicy

from chanwatch import accounts
from chanwatch.settings import Settings, load_settings
from processing.errors import RunFailedError

log = logging.getLogger("chanwatch.orchestration")
TELEGRAM_CONNECTION = accounts.connection_id(accounts.DEFAULT_ACCOUNT)  # telegram_<account> for the others
# "module:callable" building the Telegram client from (credentials or None, TelegramSettings): how the
# demo Airflow and the tests put the fake Telegram in place without touching the DAGs.
CLIENT_FACTORY_ENV = "CHANWATCH_TELEGRAM_CLIENT_FACTORY"


class FloodWaitPending(RunFailedError):
    """A channel hit a FloodWait longer than Telethon sleeps through: retry after `seconds`."""

    def __init__(self, channel: str, seconds: int) -> None:
        super().__init__(f"@{channel}: Telegram asked to wait {seconds} s (FloodWait); progress is committed")
        self.channel, self.seconds = channel, seconds


class FloodWaitRetryPolicy(RetryPolicy):
    """Retry a FloodWait after exactly as long as Telegram asked (plus a small margin), not a fixed delay."""

    margin_s = 5

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int,
                 context: Any = None) -> RetryDecision:
        if isinstance(exception, FloodWaitPending):
            return RetryDecision.retry(delay=dt.timedelta(seconds=exception.seconds + self.margin_s),
                                       reason=f"FloodWait: retry after {exception.seconds} s")
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        return {"__type": "FloodWaitRetryPolicy", "margin_s": self.margin_s}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> FloodWaitRetryPolicy:
        return cls()


def settings() -> Settings:
    return load_settings()


def allowlisted_channels() -> list[str]:
    """One mapped collect task per allowlisted channel (one account)."""
    channels = [entry.username for entry in settings().allowlist]
    log.info("event=collect.plan channels=%d", len(channels))
    return channels


def configured_accounts() -> tuple[str, ...]:
    """The Telegram accounts, read when the DAG file is parsed: one mapped collect task (and pool) each."""
    return settings().telegram.accounts


def _run_started() -> dt.datetime:
    """When this DAG run started: every account's plan task judges flood waits at that same moment, so no channel
    falls between two plans when a wait ends in between (bans count whenever they were recorded)."""
    try:
        from airflow.sdk import get_current_context

        started = get_current_context()["dag_run"].start_date  # not run_after: that may be long past
        if started is not None:
            return started
    except Exception:  # outside a task
        pass
    return dt.datetime.now(dt.UTC)


def assigned_channels(account: str) -> list[str]:
    """The allowlisted channels `account` reads in this run: rendezvous hashing over the accounts in rotation
    when the run started (a banned or flood-waited account's channels go to their next account)."""
    current = settings()
    if current.telegram.accounts == (accounts.DEFAULT_ACCOUNT,):
        return allowlisted_channels()
    channels = accounts.plan(current, _run_started())[account]
    log.info("event=collect.plan account=%s channels=%d", account, len(channels))
    return channels


def _telegram_client(current: Settings, account: str = accounts.DEFAULT_ACCOUNT) -> Any:
    factory_path = os.environ.get(CLIENT_FACTORY_ENV)
    if factory_path:
        from processing.errors import BadInputError

        try:
            credentials = telegram_credentials(account)
        except BadInputError:  # the demo's fake Telegram needs none
            credentials = None
        module, _, name = factory_path.partition(":")
        return getattr(importlib.import_module(module), name)(credentials, current.telegram)
    from collectors.telegram.client import client_factory

    return client_factory(telegram_credentials(account), current.telegram)


def telegram_credentials(account: str = accounts.DEFAULT_ACCOUNT) -> Any:
    """The `telegram_<account>` connection (login: api_id, password: api_hash, extra: {"session": ...}),
    else the account's CHANWATCH_TELEGRAM_* environment variables (see collectors.telegram.credentials)."""
    from collectors.telegram.credentials import TelegramCredentials, credentials_from_env

    try:
        from airflow.sdk import Connection

        conn = Connection.get(accounts.connection_id(account))
    except Exception:  # not inside a task, or no such connection: the environment is the other documented form
        return credentials_from_env(account=account)
    session = (conn.extra_dejson or {}).get("session")
    if not (conn.login and conn.password and session):
        return credentials_from_env(account=account)
    return TelegramCredentials(int(conn.login), conn.password, session)


def collect_channel(username: str, account: str = accounts.DEFAULT_ACCOUNT) -> dict[str, Any]:
    """Collect one channel with `account` (its pool's account) while that account is in rotation, else with the
    channel's next account; a long FloodWait becomes FloodWaitPending so the retry policy waits it out."""
    from chanwatch.steps.collect import collect

    current = settings()
    result = collect(current, clients=lambda name: _telegram_client(current, name), only=[username], prefer=account)
    outcome = result.channels[0]
    summary = {"channel": username, "account": outcome.account, "status": outcome.status, "reason": outcome.reason,
               "flood_wait_s": outcome.flood_wait_s, "failed_over": ",".join(outcome.failed_over) or None,
               **dict(outcome.counts)}
    log.info("event=collect.task %s", " ".join(f"{k}={v}" for k, v in summary.items() if v is not None))
    if outcome.status == "flood_wait":
        raise FloodWaitPending(username, outcome.flood_wait_s or 0)
    if outcome.status == "error":
        raise RunFailedError(f"@{username}: {outcome.reason}")
    return summary


def match_new() -> dict[str, Any]:
    """Match what is not matched yet (media is hashed as it is collected or imported)."""
    from chanwatch.steps.match import run_match

    result = run_match(settings())
    log.info("event=match.task %s", " ".join(f"{k}={v}" for k, v in result.counts.items()))
    return {**result.counts, "seconds": round(result.seconds, 2)}


def import_hashlist_inbox() -> dict[str, Any]:
    """Import every list file in the inbox that is not already an imported version of its list."""
    from chanwatch.steps.hashlist_inbox import import_inbox

    return import_inbox(settings())


def sync_review_queue() -> dict[str, Any]:
    """Copy new matches into the analysts' review queue (idempotent)."""
    from chanwatch.steps.review_db import sync_review

    counts = sync_review(settings()).counts
    log.info("event=review_sync.task %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def recheck_referred() -> dict[str, Any]:
    """Re-check referred items; a check that could not reach Telegram fails the task so it retries."""
    from chanwatch.steps.recheck import run_recheck

    current = settings()
    result = run_recheck(current, client_factory=lambda _credentials, _tg: _telegram_client(
        current, current.telegram.accounts[0]))
    if result.counts.get("unknown"):
        raise RunFailedError(f"recheck: {result.counts['unknown']} referred items could not be checked")
    return {**result.counts, "renotice_file": str(result.renotice_file) if result.renotice_file else None}


def aggregate() -> dict[str, Any]:
    """Bring the research aggregates up to date: only days whose inputs changed are recomputed."""
    from chanwatch.steps.aggregate import run_aggregate
    from chanwatch.steps.retention import apply_data_protection

    current = settings()
    privacy = apply_data_protection(current)  # retention and names first, so the aggregates follow them
    result = run_aggregate(current)
    log.info("event=aggregate.task %s", " ".join(f"{k}={v}" for k, v in result.counts.items()))
    return {**result.counts, "run_id": result.run_id, "seconds": round(result.seconds, 2),
            "privacy": privacy}


