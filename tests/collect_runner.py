"""Run `collect` against the fake Telegram world in a separate process (for the crash tests).

    python -m tests.collect_runner STORAGE_ROOT NOW_ISO COMMIT_EVERY
"""

from __future__ import annotations

import datetime as dt
import sys

from chanwatch.steps.collect import collect
from tests.telegram_fake import FakeTelegramClient, demo_world
from tests.test_collect import collect_settings

if __name__ == "__main__":
    root, now, commit_every = sys.argv[1], dt.datetime.fromisoformat(sys.argv[2]), int(sys.argv[3])
    result = collect(collect_settings(root, commit_every=commit_every), FakeTelegramClient(demo_world()), now=now)
    sys.exit(1 if result.retry_needed else 0)
