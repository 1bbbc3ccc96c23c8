"""Telegram credentials from the environment (or, under Airflow, the `telegram_default` connection).

The API hash and the session string are secrets: this object never shows them in its repr, and
nothing in chanwatch logs them, writes them to a dataset or puts them in an error message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from processing.errors import BadInputError

ENV_API_ID = "CHANWATCH_TELEGRAM_API_ID"
ENV_API_HASH = "CHANWATCH_TELEGRAM_API_HASH"
ENV_SESSION = "CHANWATCH_TELEGRAM_SESSION"


@dataclass(frozen=True)
class TelegramCredentials:
    api_id: int
    api_hash: str = field(repr=False)
    session: str = field(repr=False)


def credentials_from_env(env: Mapping[str, str] | None = None) -> TelegramCredentials:
    env = os.environ if env is None else env
    missing = [name for name in (ENV_API_ID, ENV_API_HASH, ENV_SESSION) if not env.get(name)]
    if missing:
        raise BadInputError(f"Telegram credentials missing: set {', '.join(missing)} (run `chanwatch login` "
                            "to create a session string)")
    if not env[ENV_API_ID].strip().isdigit():
        raise BadInputError(f"{ENV_API_ID} must be the numeric api_id from my.telegram.org")
    return TelegramCredentials(int(env[ENV_API_ID]), env[ENV_API_HASH].strip(), env[ENV_SESSION].strip())
