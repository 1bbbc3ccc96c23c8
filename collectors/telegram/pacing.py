"""Request pacing: a per-account budget of requests per minute, so collection never hammers the API.

Accounts that send bursts of history and download requests collect flood waits and then bans; a
steady, conservative pace avoids both. Downloads have their own, smaller budget.
"""

from __future__ import annotations

import asyncio
import time


class RateBudget:
    """At most `per_minute` acquisitions in any minute, spread evenly (a leaky bucket)."""

    def __init__(self, per_minute: float) -> None:
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self._next = 0.0
        self.waited_s = 0.0
        self.acquired = 0

    async def acquire(self) -> None:
        now = time.monotonic()
        wait = self._next - now
        if wait > 0:
            self.waited_s += wait
            await asyncio.sleep(wait)
            now = time.monotonic()
        self._next = max(now, self._next) + self.interval
        self.acquired += 1
