"""`[telegram]` settings: pacing, windows and caps for live collection (secrets are not settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TelegramSettings:
    # First run of a channel: collect messages from this many days back (or `collect --since`).
    backfill_days: int = 30
    # Every run re-reads this many recent days, so counters, edits and deletions stay current.
    rescan_days: int = 7
    # Per-account budgets. Conservative on purpose: bans hit accounts that burst.
    requests_per_minute: float = 30.0
    downloads_per_minute: float = 20.0
    # Telethon sleeps through flood waits up to this long; a longer wait ends the channel's step.
    flood_sleep_threshold: int = 60
    # Media larger than this is not downloaded; a video's thumbnail is hashed instead.
    max_media_bytes: int = 20 * 1024 * 1024
    # Messages per history request (Telegram's maximum is 100).
    page_size: int = 100
    # Commit (and checkpoint) after this many messages, so a long backfill keeps its progress.
    commit_every: int = 5000
    # A FloodWait at least this long takes the account out of rotation until it ends; with more than one
    # account, its channels go to the next account meanwhile (shorter waits are retried on the same account).
    account_flood_threshold: int = 300
    # The Telegram accounts collection is spread over (lower-case names; see chanwatch.accounts). "default" is
    # the Airflow connection `telegram_default`, pool `telegram_api` and the CHANWATCH_TELEGRAM_* variables.
    accounts: tuple[str, ...] = ("default",)
