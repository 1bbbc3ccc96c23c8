"""Data protection for `messages` rows: people's names and ids, and how long text is kept. Pure: no I/O.

One transform, `MessagePolicy.apply`, is used by every writer of messages (export import, live
collection) just before rows are staged, and by the retention step on rows already stored, so a
row comes out the same whichever way it was written.

- Author names (`post_author`, `fwd_from_name`, and the raw record's name fields) are kept, dropped
  (null) or pseudonymised: `anon:` + the first 16 hex digits of HMAC-SHA256(key, name), stable for a
  key, so per-author counts still work. Telegram user ids in the raw record (`user_id`, `from_id:
  "user123"`) get the same treatment: an id identifies a person as well as a name does.
- Retention: a row whose `date` is before the cutoff loses its text and raw record (and the lists
  derived from the text that can name people: `urls`, `mentions`). Hashtags, counters, hashes,
  media and matches stay.

Both are idempotent: a pseudonym is never hashed again and a purged row stays purged, so applying
the policy twice changes nothing, and a re-import of the original record yields the stored row.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

AUTHOR_NAME_COLUMNS = ("post_author", "fwd_from_name")
# Cleared once a message is older than the retention period; see docs/research.md.
PURGED_COLUMNS = ("text", "raw_json", "urls", "mentions")
PSEUDONYM_PREFIX = "anon:"
PSEUDONYM = re.compile(r"anon:[0-9a-f]{16}")

# Keys holding a person's (or a signature's) display name, in tdesktop exports and Telethon's to_dict().
NAME_KEYS = frozenset({"author", "forwarded_from", "saved_from", "post_author", "from_name", "saved_from_name"})
# Keys holding a tdesktop peer id such as "user123" / "channel456"; a `user` one is a person.
EXPORT_ID_KEYS = {"from_id": "from", "actor_id": "actor", "forwarded_from_id": "forwarded_from",
                  "saved_from_id": "saved_from"}
# Prefilter (RE2 and Python syntax alike): a raw record that matches none of these carries no name or person
# id that is not already a pseudonym, and is left as it is. Stored rows already treated are skipped cheaply.
_NOT_PSEUDONYM = '"(?:[^a]|a[^n]|an[^o]|ano[^n]|anon[^:])'
_RAW_CANDIDATE = re.compile(
    r'"(?:author|forwarded_from|saved_from|post_author|from_name|saved_from_name)"\s*:\s*' + _NOT_PSEUDONYM
    + r'|"user_id"\s*:\s*(?:[0-9]|' + _NOT_PSEUDONYM + ")"
    + r'|"(?:from_id|actor_id|forwarded_from_id|saved_from_id)"\s*:\s*"user')
_RAW_CANDIDATE_PATTERN = _RAW_CANDIDATE.pattern


def _is_person_id(key: str, value: Any) -> bool:
    """A Telegram user id: Telethon's `user_id` (PeerUser, mention-name entities), or tdesktop's "user123"."""
    if key == "user_id":
        return isinstance(value, int | str) and not isinstance(value, bool)
    return key in EXPORT_ID_KEYS and isinstance(value, str) and value.startswith("user")


@dataclass(frozen=True)
class MessagePolicy:
    """What to do to message rows before they are stored.

    `author_names`: keep, drop or pseudonymise (then `key` is required). `purge_before_micros`: rows
    whose `date` (UTC, microseconds) is before this lose the `PURGED_COLUMNS`; None keeps them.
    """

    author_names: str = "keep"
    key: bytes | None = None
    purge_before_micros: int | None = None

    def __post_init__(self) -> None:
        if self.author_names not in ("keep", "drop", "pseudonymise"):
            raise ValueError(f"author_names must be keep, drop or pseudonymise, not {self.author_names!r}")
        if self.author_names == "pseudonymise" and not self.key:
            raise ValueError("pseudonymising author names needs a key")

    def __repr__(self) -> str:  # never show the key
        return (f"MessagePolicy(author_names={self.author_names!r}, "
                f"purge_before_micros={self.purge_before_micros!r})")

    @property
    def active(self) -> bool:
        return self.author_names != "keep" or self.purge_before_micros is not None

    # -- single values ------------------------------------------------------------------------------
    def _pseudonym(self, domain: bytes, value: str) -> str:
        assert self.key is not None
        digest = hmac.new(self.key, domain + b"\x00" + value.encode("utf-8"), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:16]

    def name(self, value: str | None) -> str | None:
        """A display name under the policy (idempotent)."""
        if value is None or self.author_names == "keep":
            return value
        if self.author_names == "drop":
            return None
        return value if PSEUDONYM.fullmatch(value) else self._pseudonym(b"name", value)

    def user_id(self, value: Any) -> Any:
        """A Telegram user id (an int, or tdesktop's "user123") under the policy (idempotent)."""
        if value is None or self.author_names == "keep":
            return value
        if self.author_names == "drop":
            return None
        if isinstance(value, str):
            if PSEUDONYM.fullmatch(value):
                return value
            value = value.removeprefix("user")
        return self._pseudonym(b"user", str(value))

    # -- the raw record -----------------------------------------------------------------------------
    def _walk(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self._walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {}
        person_names = {name for key, name in EXPORT_ID_KEYS.items()
                        if isinstance(node.get(key), str) and node[key].startswith("user")}
        for key, value in node.items():
            if (key in NAME_KEYS or key in person_names) and isinstance(value, str):
                out[key] = self.name(value)
            elif _is_person_id(key, value):
                out[key] = self.user_id(value)
            else:
                out[key] = self._walk(value)
        return out

    def raw_record(self, raw: str) -> str:
        """The raw JSON record with its names and person ids under the policy; unchanged when it has none."""
        if self.author_names == "keep" or not _RAW_CANDIDATE.search(raw):
            return raw
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:  # e.g. integers beyond 64 bits: the standard library reads those
            data = json.loads(raw)
        walked = self._walk(data)
        if walked == data:
            return raw
        try:
            return orjson.dumps(walked).decode()
        except TypeError:
            return json.dumps(walked, ensure_ascii=False, separators=(",", ":"))

    # -- tables -------------------------------------------------------------------------------------
    def apply(self, table: pa.Table) -> pa.Table:
        """Apply the policy to a table of `messages` rows; returns the same object when nothing changes."""
        if not self.active or table.num_rows == 0:
            return table
        out = table
        if self.purge_before_micros is not None:
            out = self._purge(out)
        if self.author_names != "keep":
            out = self._names(out)
        return out

    def expired(self, table: pa.Table) -> pa.Array:
        """Mask of rows older than the cutoff (rows without a date are never expired)."""
        assert self.purge_before_micros is not None
        cutoff = pa.scalar(self.purge_before_micros, pa.int64()).cast(table.schema.field("date").type)
        return pc.fill_null(pc.less(table["date"], cutoff), False)

    def _purge(self, table: pa.Table) -> pa.Table:
        old = self.expired(table)
        holds = pc.or_(pc.is_valid(table["text"]), pc.is_valid(table["raw_json"]))
        for name in ("urls", "mentions"):
            holds = pc.or_(holds, pc.is_valid(table[name]))
        if not pc.any(pc.and_(old, holds)).as_py():
            return table
        for name in PURGED_COLUMNS:
            index = table.schema.get_field_index(name)
            column = table[name]
            table = table.set_column(index, table.schema.field(index),
                                     pc.if_else(old, pa.scalar(None, column.type), column))
        return table

    def _names(self, table: pa.Table) -> pa.Table:
        for name in AUTHOR_NAME_COLUMNS:
            column = table[name]
            if column.null_count == len(column):
                continue
            values = column.to_pylist()
            mapped = [self.name(v) for v in values]
            if mapped != values:
                index = table.schema.get_field_index(name)
                table = table.set_column(index, table.schema.field(index), pa.array(mapped, column.type))
        raw = table["raw_json"]
        if raw.null_count == len(raw):
            return table
        candidates = pc.fill_null(pc.match_substring_regex(raw, _RAW_CANDIDATE_PATTERN), False)
        if not pc.any(candidates).as_py():
            return table
        values = pc.filter(raw, candidates).to_pylist()  # only the records that may hold a name
        mapped = [self.raw_record(v) for v in values]
        if mapped != values:
            index = table.schema.get_field_index("raw_json")
            column = pc.replace_with_mask(raw.combine_chunks(), candidates.combine_chunks(), pa.array(mapped, raw.type))
            table = table.set_column(index, table.schema.field(index), column)
        return table
