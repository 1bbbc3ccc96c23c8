"""Settings: one TOML file (`chanwatch.toml`), overridden by `CHANWATCH_*` variables and CLI options.

Errors name the file, the key and the line, because operators edit this file by hand.
When no config file exists at the default path, the embedded defaults apply: a local storage
root under `var/data` and the bundled demo channel on the allowlist.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.telegram.settings import TelegramSettings
from processing.errors import BadInputError
from processing.hashing.limits import DecodeLimits
from processing.matching.rules import MatchRules
from review.config import ReviewSettings

DEFAULT_CONFIG_PATH = Path("chanwatch.toml")
DEFAULT_STORAGE_ROOT = "var/data"
USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
ACCOUNT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

DEMO_ALLOWLIST_ENTRY = {
    "username": "chanwatch_demo",
    "channel_id": 1999000001,
    "basis": "Bundled fictional demo channel (benign generated media).",
    "approved_by": "chanwatch maintainers",
    "approved_at": dt.date(2026, 11, 23),
}


@dataclass(frozen=True)
class AllowlistEntry:
    """One monitored channel and the recorded basis for monitoring it."""

    username: str
    basis: str
    approved_by: str
    approved_at: dt.date
    channel_id: int | None = None


@dataclass(frozen=True)
class ImportSettings:
    """Limits for reading Telegram Desktop exports."""

    max_media_bytes: int = 512 * 1024 * 1024


@dataclass(frozen=True)
class HashlistSettings:
    """Where the `chanwatch_hashlists` DAG looks for list files, and the category they get by default."""

    inbox: str = "var/hashlists"
    default_category: str = "known-material"


@dataclass(frozen=True)
class AirflowSettings:
    """Schedules of the DAGs (read when the DAG files are parsed)."""

    collect_every_minutes: int = 60


@dataclass(frozen=True)
class PrivacySettings:
    """Data protection: how long message text is kept, and what happens to people's names."""

    # Days after a message's date when its text and raw record are purged (hashes, counts and
    # matches stay). 0 keeps them for good.
    retain_text_days: int = 0
    # `post_author` and `fwd_from_name`: keep, drop (null), or pseudonymise (keyed hash).
    author_names: str = "keep"


AUTHOR_NAME_MODES = ("keep", "drop", "pseudonymise")


@dataclass(frozen=True)
class Settings:
    storage_root: str
    allowlist: tuple[AllowlistEntry, ...]
    imports: ImportSettings = field(default_factory=ImportSettings)
    hashing: DecodeLimits = field(default_factory=DecodeLimits)
    matching: MatchRules = field(default_factory=MatchRules)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    hashlists: HashlistSettings = field(default_factory=HashlistSettings)
    airflow: AirflowSettings = field(default_factory=AirflowSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    # None: a SQLite file under the storage root. A PostgreSQL URL's password belongs in the
    # environment (CHANWATCH_REVIEW_DATABASE_URL), not in the file.
    review_database_url: str | None = None
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    config_path: Path | None = None

    def channel_by_id(self, channel_id: int) -> AllowlistEntry | None:
        return next((c for c in self.allowlist if c.channel_id == channel_id), None)

    def channel_by_username(self, username: str) -> AllowlistEntry | None:
        wanted = username.lstrip("@").lower()
        return next((c for c in self.allowlist if c.username.lower() == wanted), None)


class _Locator:
    """Finds the line of a key in the TOML text, so validation errors can point at it."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def _table_start(self, table: str, index: int | None) -> int | None:
        header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]" if index is not None
                            else rf"^\s*\[\s*{re.escape(table)}\s*\]")
        seen = -1
        for number, line in enumerate(self.lines, start=1):
            if header.match(line):
                seen += 1
                if index is None or seen == index:
                    return number
        return None

    def line_of(self, table: str | None, key: str | None, index: int | None = None) -> int | None:
        start = self._table_start(table, index) if table else 0
        if start is None:
            return None
        if key is None:
            return start or None
        key_re = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number in range(start + 1, len(self.lines) + 1):
            line = self.lines[number - 1]
            if number > start + 0 and re.match(r"^\s*\[", line) and number != start:
                break
            if key_re.match(line):
                return number
        return start or None


def _where(path: Path | None, line: int | None) -> str:
    name = str(path) if path else "<embedded defaults>"
    return f"{name}:{line}" if line else name


def _parse_allowlist(raw: Any, path: Path | None, loc: _Locator) -> tuple[AllowlistEntry, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise BadInputError(f"{_where(path, loc.line_of(None, 'channels'))}: key 'channels' must be an "
                            "array of tables ([[channels]])")
    entries: list[AllowlistEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        def fail(key: str | None, problem: str, i: int = i) -> BadInputError:
            line = loc.line_of("channels", key, i)
            label = f"channels[{i}].{key}" if key else f"channels[{i}]"
            return BadInputError(f"{_where(path, line)}: key '{label}': {problem}")

        if not isinstance(item, Mapping):
            raise fail(None, "must be a table")
        for key in ("username", "basis", "approved_by", "approved_at"):
            if key not in item or item[key] in ("", None):
                raise fail(key, "is required (every monitored channel records why, who approved it "
                                "and when)")
        unknown = set(item) - {"username", "basis", "approved_by", "approved_at", "channel_id"}
        if unknown:
            raise fail(sorted(unknown)[0], "unknown key")
        username = item["username"]
        if not isinstance(username, str) or not USERNAME_RE.match(username.lstrip("@")):
            raise fail("username", f"{username!r} is not a public channel username")
        username = username.lstrip("@")
        for key in ("basis", "approved_by"):
            if not isinstance(item[key], str):
                raise fail(key, "must be a string")
        approved_at = item["approved_at"]
        if isinstance(approved_at, dt.datetime):
            approved_at = approved_at.date()
        if not isinstance(approved_at, dt.date):
            raise fail("approved_at", "must be a TOML date such as 2026-11-23")
        channel_id = item.get("channel_id")
        if channel_id is not None and (isinstance(channel_id, bool) or not isinstance(channel_id, int)
                                       or channel_id <= 0):
            raise fail("channel_id", "must be a positive integer (the id without the -100 prefix)")
        if username.lower() in seen:
            raise fail("username", f"{username!r} is listed twice")
        seen.add(username.lower())
        entries.append(AllowlistEntry(username, item["basis"], item["approved_by"], approved_at, channel_id))
    return tuple(entries)


def _positive_int(value: Any, where: str, key: str) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadInputError(f"{where}: key '{key}' must be a positive integer, got {value!r}")
    return value


def _parse_numbers(section: str, defaults: Any, table: Any, source: Path | None, loc: _Locator,
                   env: Mapping[str, str], *, allow_zero: frozenset[str] = frozenset()) -> Any:
    """A table of numeric settings (`[hashing]`, `[matching]`); CHANWATCH_<SECTION>_<KEY> overrides each key."""
    if not isinstance(table, Mapping):
        raise BadInputError(f"{_where(source, loc.line_of(None, section))}: key '{section}' must be a table")
    for key in table:
        if not hasattr(defaults, key):
            raise BadInputError(f"{_where(source, loc.line_of(section, key))}: key '{section}.{key}': unknown key")
    values: dict[str, Any] = {}
    for key, default in vars(defaults).items():
        if isinstance(default, bool) or not isinstance(default, int | float):
            continue  # a non-numeric key of the table, parsed by its own function
        raw = env.get(f"CHANWATCH_{section.upper()}_{key.upper()}", table.get(key, default))
        where = _where(source, loc.line_of(section, key)) if key in table else "environment"
        try:
            value = type(default)(raw) if not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            value = None
        if value is None or value < 0 or (value == 0 and key not in allow_zero):
            kind = "a non-negative" if key in allow_zero else "a positive"
            raise BadInputError(f"{where}: key '{section}.{key}' must be {kind} number, got {raw!r}")
        values[key] = value
    return dataclasses.replace(defaults, **values)


def _parse_strings(section: str, defaults: Any, table: Any, source: Path | None, loc: _Locator,
                   env: Mapping[str, str]) -> Any:
    """A table of non-empty string settings; CHANWATCH_<SECTION>_<KEY> overrides each key."""
    if not isinstance(table, Mapping):
        raise BadInputError(f"{_where(source, loc.line_of(None, section))}: key '{section}' must be a table")
    values: dict[str, str] = {}
    for key in table:
        if not hasattr(defaults, key):
            raise BadInputError(f"{_where(source, loc.line_of(section, key))}: key '{section}.{key}': unknown key")
    for key, default in vars(defaults).items():
        value = env.get(f"CHANWATCH_{section.upper()}_{key.upper()}", table.get(key, default))
        if not isinstance(value, str) or not value.strip():
            where = _where(source, loc.line_of(section, key)) if key in table else "environment"
            raise BadInputError(f"{where}: key '{section}.{key}' must be a non-empty string")
        values[key] = value
    return type(defaults)(**values)


def _parse_accounts(table: Mapping[str, Any], source: Path | None, loc: _Locator,
                    env: Mapping[str, str]) -> tuple[str, ...]:
    """`[telegram] accounts = ["acct_a", "acct_b"]` (or CHANWATCH_TELEGRAM_ACCOUNTS=acct_a,acct_b): the account
    names collection is spread over; default: one account, `default`."""
    if "CHANWATCH_TELEGRAM_ACCOUNTS" in env:
        raw: Any = [name.strip() for name in env["CHANWATCH_TELEGRAM_ACCOUNTS"].split(",") if name.strip()]
        where = "environment"
    else:
        raw = table.get("accounts", list(TelegramSettings.accounts))
        where = _where(source, loc.line_of("telegram", "accounts"))
    problem = None
    if not isinstance(raw, list) or not raw:
        problem = "must be a non-empty array of account names"
    else:
        bad = [name for name in raw if not isinstance(name, str) or not ACCOUNT_NAME_RE.match(name)]
        if bad:
            problem = (f"{bad[0]!r} is not an account name (lower-case letters, digits and _, starting with a "
                       "letter, at most 32 characters)")
        elif len(set(raw)) != len(raw):
            problem = f"{next(n for n in raw if raw.count(n) > 1)!r} is listed twice"
    if problem:
        raise BadInputError(f"{where}: key 'telegram.accounts' {problem}")
    return tuple(raw)


def _parse_privacy(table: Any, source: Path | None, loc: _Locator, env: Mapping[str, str]) -> PrivacySettings:
    if not isinstance(table, Mapping):
        raise BadInputError(f"{_where(source, loc.line_of(None, 'privacy'))}: key 'privacy' must be a table")
    table = dict(table)
    mode = env.get("CHANWATCH_PRIVACY_AUTHOR_NAMES", table.pop("author_names", PrivacySettings.author_names))
    if mode not in AUTHOR_NAME_MODES:
        where = _where(source, loc.line_of("privacy", "author_names")) if "author_names" not in env else "environment"
        raise BadInputError(f"{where}: key 'privacy.author_names' must be one of {', '.join(AUTHOR_NAME_MODES)}, "
                            f"got {mode!r}")
    for key in table:
        if key != "retain_text_days":
            raise BadInputError(f"{_where(source, loc.line_of('privacy', key))}: key 'privacy.{key}': unknown key")
    raw = env.get("CHANWATCH_PRIVACY_RETAIN_TEXT_DAYS", table.get("retain_text_days", 0))
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        where = _where(source, loc.line_of("privacy", "retain_text_days"))
        raise BadInputError(f"{where}: key 'privacy.retain_text_days' must be a whole number of days (0 keeps "
                            f"text for good), got {raw!r}")
    return PrivacySettings(retain_text_days=raw, author_names=mode)


def load_settings(config: Path | str | None = None, storage: str | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Load settings: file, then `CHANWATCH_*` environment, then explicit CLI options."""
    env = os.environ if environ is None else environ
    explicit = config or env.get("CHANWATCH_CONFIG")
    path = Path(explicit) if explicit else DEFAULT_CONFIG_PATH
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInputError(f"{path}: cannot read config file: {exc}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise BadInputError(f"{path}: invalid TOML: {exc}") from None
        source: Path | None = path
    elif explicit:
        raise BadInputError(f"{path}: config file not found")
    else:
        text, source = "", None
        data = {"storage": {"root": DEFAULT_STORAGE_ROOT}, "channels": [DEMO_ALLOWLIST_ENTRY]}

    loc = _Locator(text)
    known = {"storage", "channels", "import", "hashing", "matching", "telegram", "hashlists", "airflow", "review",
             "privacy"}
    for key in data:
        if key not in known:
            raise BadInputError(f"{_where(source, loc.line_of(key, None) or loc.line_of(None, key))}: "
                                f"unknown key '{key}'")
    storage_table = data.get("storage", {})
    if not isinstance(storage_table, Mapping):
        raise BadInputError(f"{_where(source, loc.line_of(None, 'storage'))}: key 'storage' must be a table")
    root = storage_table.get("root", DEFAULT_STORAGE_ROOT)
    if not isinstance(root, str) or not root.strip():
        raise BadInputError(f"{_where(source, loc.line_of('storage', 'root'))}: key 'storage.root' must "
                            "be a non-empty string")
    import_table = data.get("import", {})
    max_media = import_table.get("max_media_bytes", ImportSettings.max_media_bytes)
    max_media = _positive_int(max_media, _where(source, loc.line_of("import", "max_media_bytes")),
                              "import.max_media_bytes")

    hashing = _parse_numbers("hashing", DecodeLimits(), data.get("hashing", {}), source, loc, env)
    matching = _parse_numbers("matching", MatchRules(), data.get("matching", {}), source, loc, env,
                              allow_zero=frozenset({"pdq_min_quality", "vpdq_frame_quality",
                                                    "vpdq_compared_match_percent", "phash_max_distance",
                                                    "dhash_max_distance", "flat_index_max_entries"}))
    telegram_table = data.get("telegram", {})
    telegram_table = {k: v for k, v in telegram_table.items() if k != "accounts"} \
        if isinstance(telegram_table, Mapping) else telegram_table
    telegram = _parse_numbers("telegram", TelegramSettings(), telegram_table, source, loc, env,
                              allow_zero=frozenset({"rescan_days", "flood_sleep_threshold"}))
    telegram = dataclasses.replace(telegram, accounts=_parse_accounts(data.get("telegram", {}), source, loc, env))
    airflow = _parse_numbers("airflow", AirflowSettings(), data.get("airflow", {}), source, loc, env)
    hashlists = _parse_strings("hashlists", HashlistSettings(), data.get("hashlists", {}), source, loc, env)
    review_table = data.get("review", {})
    if not isinstance(review_table, Mapping):
        raise BadInputError(f"{_where(source, loc.line_of(None, 'review'))}: key 'review' must be a table")
    review_table = dict(review_table)
    database_url = env.get("CHANWATCH_REVIEW_DATABASE_URL", review_table.pop("database_url", None))
    if database_url is not None and (not isinstance(database_url, str) or not database_url.strip()):
        raise BadInputError(f"{_where(source, loc.line_of('review', 'database_url'))}: key "
                            "'review.database_url' must be a non-empty string")
    review = _parse_numbers("review", ReviewSettings(), review_table, source, loc, env)
    privacy = _parse_privacy(data.get("privacy", {}), source, loc, env)

    root = env.get("CHANWATCH_STORAGE_ROOT", root)
    if "CHANWATCH_IMPORT_MAX_MEDIA_BYTES" in env:
        max_media = _positive_int(env["CHANWATCH_IMPORT_MAX_MEDIA_BYTES"], "environment",
                                  "CHANWATCH_IMPORT_MAX_MEDIA_BYTES")
    if storage:
        root = storage
    return Settings(
        storage_root=root,
        allowlist=_parse_allowlist(data.get("channels"), source, loc),
        imports=ImportSettings(max_media_bytes=max_media),
        hashing=hashing,
        matching=matching,
        telegram=telegram,
        hashlists=hashlists,
        airflow=airflow,
        review=review,
        review_database_url=database_url,
        privacy=privacy,
        config_path=source,
    )
