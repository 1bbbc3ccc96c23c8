"""Telegram credentials from the environment (or, under Airflow, the `telegram_<account>` connection).

The account `default` reads CHANWATCH_TELEGRAM_API_ID, _API_HASH and _SESSION; any other account
`<name>` reads CHANWATCH_TELEGRAM_<NAME>_API_ID, _API_HASH and _SESSION.

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


def env_names(account: str = "default") -> tuple[str, str, str]:
    """The variables (api id, api hash, session) holding an account's credentials."""
    if account == "default":
        return ENV_API_ID, ENV_API_HASH, ENV_SESSION
    prefix = f"CHANWATCH_TELEGRAM_{account.upper()}"
    return f"{prefix}_API_ID", f"{prefix}_API_HASH", f"{prefix}_SESSION"


def credentials_from_env(env: Mapping[str, str] | None = None, account: str = "default") -> TelegramCredentials:
    env = os.environ if env is None else env
    api_id, api_hash, session = env_names(account)
    missing = [name for name in (api_id, api_hash, session) if not env.get(name)]
    if missing:
        whose = "" if account == "default" else f" for account {account!r}"
        raise BadInputError(f"Telegram credentials missing{whose}: set {', '.join(missing)} (run `chanwatch login` "
                            "to create a session string)")
    if not env[api_id].strip().isdigit():
        raise BadInputError(f"{api_id} must be the numeric api_id from my.telegram.org")
    return TelegramCredentials(int(env[api_id]), env[api_hash].strip(), env[session].strip())
