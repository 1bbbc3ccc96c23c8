"""The review app's settings (`[review]` in chanwatch.toml; CHANWATCH_REVIEW_<KEY> overrides each)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReviewSettings:
    """Timeouts, login limits and the re-notification schedule, with the defaults a hotline would use."""

    claim_minutes: int = 15            # an analyst's claim on an item lapses after this
    session_hours: int = 12            # a login lasts this long
    max_failed_logins: int = 5         # consecutive wrong passwords before an account locks
    lockout_minutes: int = 15          # how long a locked account stays locked
    address_max_failures: int = 20     # wrong passwords from one client address per window ...
    address_window_minutes: int = 15   # ... before that address is throttled for the window
    renotify_hours: int = 24           # re-notify the platform about items still online this often
    min_password_length: int = 12
    page_size: int = 50
