"""Parse a hash-list file into validated, de-duplicated entries. Pure: bytes in, arrays out.

Formats (`auto` detects them from the first meaningful line):
- `pytx`: python-threatexchange's local signal file, `<signal_type> <hash>` per line, or bare hashes
  with `--signal` naming the type for the whole file;
- `csv`: python-threatexchange's CSV export (`signal_type,signal_str,collab,category,tags`), a plain
  CSV (`signal_type,hash` plus optional `entry_id,category,source,added_at`), or a wide CSV with one
  column per hash type (`md5,sha1,photodna,...`); `,` or `;`, detected from the header;
- `md5`: one 32-hex MD5 per line, as hotlines distribute them;
- `vpdq`: the vpdq tool's `frame,quality,pdqhex,timestamp` lines, one file per video.
Comments (`#`) and blank lines are allowed. Any bad line stops the import with FILE:LINE.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from processing.errors import BadInputError
from processing.matching.codes import codes_to_hex_array, hex_matrix_to_codes, hex_to_codes
from processing.matching.signals import SIGNALS, canonical_signal

FORMATS = ("auto", "pytx", "csv", "md5", "vpdq")
HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
VPDQ_LINE_RE = re.compile(r"^\d+,\d+,[0-9a-fA-F]{64},[0-9.]+$")
META_COLUMNS = {"signal_type", "hash", "signal_str", "entry_id", "id", "category", "source", "added_at", "collab",
                "tags"}

ENTRY_SCHEMA = pa.schema([
    ("signal_type", pa.string()), ("hash", pa.string()), ("entry_id", pa.string()), ("category", pa.string()),
    ("source", pa.string()), ("added_at", pa.timestamp("us", tz="UTC")), ("line", pa.int64()),
    ("frames", pa.list_(pa.struct([("ts", pa.float64()), ("pdq", pa.string()), ("quality", pa.int32())]))),
])


@dataclass
class SignalEntries:
    """The entries of one signal type, in file order, duplicates folded."""

    table: pa.Table  # ENTRY_SCHEMA columns
    codes: np.ndarray | None  # packed hashes for pdq/phash/dhash/md5/sha256, aligned with `table`


@dataclass
class ParsedList:
    format: str
    signals: dict[str, SignalEntries]
    lines: int = 0
    duplicates_folded: int = 0
    ignored: Counter = field(default_factory=Counter)  # unsupported hash types -> values ignored

    @property
    def entry_count(self) -> int:
        return sum(s.table.num_rows for s in self.signals.values())

    def counts(self) -> dict[str, int]:
        return {name: s.table.num_rows for name, s in sorted(self.signals.items())}


class _Fail(Exception):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line, self.problem = line, problem


def parse_hash_list(data: bytes, path: Path | str, *, fmt: str = "auto", signal: str | None = None,
                    category: str | None = None, now: dt.datetime | None = None) -> ParsedList:
    """Parse one list file; raises BadInputError naming FILE:LINE on the first bad line."""
    name = str(path)
    if fmt not in FORMATS:
        raise BadInputError(f"{name}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if signal is not None:
        try:
            signal = canonical_signal(signal)
        except KeyError:
            signal = None
        if signal is None:
            raise BadInputError(f"{name}: --signal must be one of {', '.join(SIGNALS)}")
    now = now or dt.datetime.now(dt.UTC)
    try:
        fast = _fast_fixed_width(data, fmt, signal, category, now)
        if fast is not None:
            return fast
        text = _decode(data)
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        detected = fmt if fmt != "auto" else _detect(lines, name, signal)
        builder = _Builder(category, now)
        if detected == "csv":
            _parse_csv(lines, builder, signal)
        elif detected == "vpdq":
            _parse_vpdq_tool(lines, builder, Path(name).stem)
        else:
            _parse_lines(lines, builder, signal, md5_only=detected == "md5")
    except _Fail as fail:
        raise BadInputError(f"{name}:{fail.line}: {fail.problem}") from None
    parsed = builder.finish(detected)
    parsed.lines = len(lines)
    if parsed.entry_count == 0 and not parsed.ignored:
        raise BadInputError(f"{name}: no hashes found")
    return parsed


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _Fail(line, f"not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def _meaningful(lines: list[str]) -> list[tuple[int, str]]:
    return [(i, s) for i, raw in enumerate(lines, start=1) if (s := raw.strip()) and not s.startswith("#")]


def _detect(lines: list[str], name: str, signal: str | None) -> str:
    first = next(iter(_meaningful(lines)), None)
    if first is None:
        raise _Fail(1, "no hashes found")
    number, line = first
    if VPDQ_LINE_RE.match(line):
        return "vpdq"
    if ("," in line or ";" in line) and line.split(None, 1)[0].lower() != "vpdq":
        return "csv"
    token = line.split()[0]
    if len(line.split()) == 1 and HEX_RE.match(token) and signal is None:
        if len(token) == 32:
            return "md5"
        kinds = {64: "pdq or sha256", 16: "phash or dhash"}.get(len(token))
        if kinds:
            raise _Fail(number, f"a bare {len(token)}-hex line could be {kinds}: pass --signal to say which")
    return "pytx"


class _Builder:
    """Collects entries per signal type, folding duplicates."""

    def __init__(self, category: str | None, now: dt.datetime) -> None:
        self.category = category
        self.now = now
        self.rows: dict[str, dict[str, list]] = {}
        self.seen: dict[str, set[str]] = {}
        self.duplicates = 0
        self.ignored: Counter = Counter()

    def add(self, line: int, signal_raw: str, value: str, *, entry_id: str | None = None,
            category: str | None = None, source: str | None = None, added_at: dt.datetime | None = None) -> None:
        try:
            signal = canonical_signal(signal_raw)
        except KeyError:
            raise _Fail(line, f"unknown signal type {signal_raw!r} (known: {', '.join(SIGNALS)})") from None
        if signal is None:
            self.ignored[signal_raw.strip().lower()] += 1
            return
        frames = None
        if signal == "vpdq":
            frames = _vpdq_signal_frames(value, line)
            value = _frames_digest(frames)
        else:
            value = _check_hex(value, SIGNALS[signal].hex_len, signal, line)
        seen = self.seen.setdefault(signal, set())
        if value in seen:
            self.duplicates += 1
            return
        seen.add(value)
        self.add_checked(signal, value, line, entry_id, category, source, added_at, frames)

    def add_checked(self, signal: str, value: str, line: int, entry_id: str | None, category: str | None,
                    source: str | None, added_at: dt.datetime | None, frames: list[dict] | None) -> None:
        cols = self.rows.setdefault(signal, {name: [] for name in ENTRY_SCHEMA.names})
        cols["signal_type"].append(signal)
        cols["hash"].append(value)
        cols["entry_id"].append(entry_id or None)
        cols["category"].append(category or self.category)
        cols["source"].append(source or None)
        cols["added_at"].append(added_at or self.now)
        cols["line"].append(line)
        cols["frames"].append(frames)

    def finish(self, fmt: str) -> ParsedList:
        signals = {}
        for signal, cols in self.rows.items():
            table = pa.table(cols, schema=ENTRY_SCHEMA)
            hex_len = SIGNALS[signal].hex_len
            codes = hex_to_codes(cols["hash"], hex_len // 2) if hex_len else None
            signals[signal] = SignalEntries(table, codes)
        return ParsedList(fmt, signals, duplicates_folded=self.duplicates, ignored=self.ignored)


def _check_hex(value: str, hex_len: int, signal: str, line: int) -> str:
    value = value.strip()
    if len(value) != hex_len:
        raise _Fail(line, f"{signal} hash must be {hex_len} hex digits, got {len(value)}: {value[:80]!r}")
    if not HEX_RE.match(value):
        raise _Fail(line, f"{signal} hash is not hexadecimal: {value[:80]!r}")
    return value.lower()


def _parse_lines(lines: list[str], builder: _Builder, signal: str | None, *, md5_only: bool) -> None:
    for number, line in _meaningful(lines):
        parts = line.split(None, 1)
        if len(parts) == 1:
            if md5_only:
                builder.add(number, "md5", parts[0])
            elif signal:
                builder.add(number, signal, parts[0])
            else:
                raise _Fail(number, "a bare hash needs --signal (or lines of the form '<signal_type> <hash>')")
        elif md5_only:
            raise _Fail(number, f"expected one MD5 per line, got {line[:80]!r}")
        else:
            builder.add(number, parts[0], parts[1])


def _split_csv(line: str, sep: str, number: int) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=sep, strict=True))
    except csv.Error as exc:
        raise _Fail(number, f"bad CSV row: {exc}") from None


def _parse_csv(lines: list[str], builder: _Builder, signal: str | None) -> None:
    rows = _meaningful(lines)
    if not rows:
        return
    header_line, header = rows[0]
    sep = ";" if header.count(";") > header.count(",") else ","
    columns = [c.strip().lower() for c in _split_csv(header, sep, header_line)]
    value_column = "hash" if "hash" in columns else "signal_str" if "signal_str" in columns else None
    long_form = "signal_type" in columns and value_column is not None
    hash_columns = [c for c in columns if c not in META_COLUMNS]
    if not long_form and not any(_is_signal_name(c) for c in hash_columns) and not (value_column and signal):
        raise _Fail(header_line, "CSV header needs signal_type and hash (or signal_str) columns, or one "
                    f"column per hash type; got {header[:120]!r}")
    for number, line in rows[1:]:
        values = _split_csv(line, sep, number)
        if len(values) != len(columns):
            raise _Fail(number, f"bad CSV row: {len(values)} fields, header has {len(columns)}")
        row = dict(zip(columns, (v.strip() for v in values), strict=True))
        meta = {"entry_id": row.get("entry_id") or row.get("id") or None,
                "category": row.get("category") or None,
                "source": row.get("source") or row.get("collab") or None,
                "added_at": _parse_time(row.get("added_at"), number)}
        if long_form:
            builder.add(number, row["signal_type"], row[value_column], **meta)
        elif value_column and signal:
            builder.add(number, signal, row[value_column], **meta)
        else:
            for column in hash_columns:
                if row[column] and _is_signal_name(column):
                    builder.add(number, column, row[column], **meta)


def _is_signal_name(column: str) -> bool:
    try:
        canonical_signal(column)
    except KeyError:
        return False
    return True


def _parse_time(value: str | None, line: int) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Fail(line, f"added_at is not an ISO date or time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _frame(pdq: str, quality: str, ts: str, line: int) -> dict:
    pdq = _check_hex(pdq, 64, "vpdq frame", line)
    try:
        q, t = int(quality), float(ts)
    except ValueError:
        raise _Fail(line, f"vpdq frame quality/timestamp must be numbers: {quality!r}, {ts!r}") from None
    if not 0 <= q <= 100 or t < 0:
        raise _Fail(line, f"vpdq frame quality must be 0..100 and timestamp >= 0: {quality!r}, {ts!r}")
    return {"ts": round(t, 3), "pdq": pdq, "quality": q}


def _vpdq_signal_frames(value: str, line: int) -> list[dict]:
    """python-threatexchange's vpdq signal string: a JSON list of "pdqhex,quality,timestamp"."""
    try:
        items = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise _Fail(line, "vpdq signal is not a JSON list of 'pdqhex,quality,timestamp' strings") from None
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise _Fail(line, "vpdq signal must be a non-empty JSON list of 'pdqhex,quality,timestamp' strings")
    frames = []
    for item in items:
        parts = item.split(",")
        if len(parts) != 3:
            raise _Fail(line, f"vpdq feature must be 'pdqhex,quality,timestamp': {item[:90]!r}")
        frames.append(_frame(*parts, line))
    return frames


def _frames_digest(frames: list[dict]) -> str:
    """The identity of a listed video: SHA-256 of its frames, as vPDQ prints them."""
    text = "\n".join(f"{f['pdq']},{f['quality']},{f['ts']:.3f}" for f in frames)
    return hashlib.sha256(text.encode()).hexdigest()


def _parse_vpdq_tool(lines: list[str], builder: _Builder, video_name: str) -> None:
    """The vpdq tool's output for one video: `frame,quality,pdqhex,timestamp` per line."""
    frames = []
    first = None
    for number, line in _meaningful(lines):
        parts = line.split(",")
        if len(parts) != 4 or not parts[0].strip().isdigit():
            raise _Fail(number, f"expected 'frame,quality,pdqhex,timestamp', got {line[:90]!r}")
        frames.append(_frame(parts[2], parts[1], parts[3], number))
        first = first or number
    if frames:
        builder.add_checked("vpdq", _frames_digest(frames), first or 1, video_name, None, None, None, frames)


def first_occurrences(codes: np.ndarray) -> np.ndarray:
    """Indexes of the first occurrence of each distinct row, in file order.

    Sorting on the first 8 bytes and comparing whole rows only where those tie is several times
    faster than `np.unique` on whole rows (10M PDQ hashes: seconds instead of ~10 s).
    """
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    head = np.ascontiguousarray(codes[:, :8]).view(">u8").ravel()
    order = np.argsort(head, kind="stable")
    sorted_head = head[order]
    tie = np.zeros(n, dtype=bool)
    same = sorted_head[1:] == sorted_head[:-1]
    tie[1:] |= same
    tie[:-1] |= same
    keep = order[~tie]
    if tie.any():
        tied = np.sort(order[tie])  # file order, so np.unique's first index is the first occurrence
        rows = np.ascontiguousarray(codes[tied]).view(np.dtype((np.void, codes.shape[1]))).ravel()
        _, first = np.unique(rows, return_index=True)
        keep = np.concatenate([keep, tied[first]])
    return np.sort(keep)


def _fast_fixed_width(data: bytes, fmt: str, signal: str | None, category: str | None,
                      now: dt.datetime) -> ParsedList | None:
    """Vectorised path for the common big file: every line `<hex>` or `<type> <hex>`, same width.

    Returns None whenever the file is anything else (comments, mixed types, a bad line), and the
    line-by-line parser then handles it, with its exact errors.
    """
    if fmt not in ("auto", "pytx", "md5") or len(data) < 16 or b"\r" in data[:4096]:
        return None
    if not data.endswith(b"\n"):
        data += b"\n"
    first_len = data.find(b"\n")
    width = first_len + 1
    if first_len <= 0 or len(data) % width:
        return None
    first = data[:first_len].decode("ascii", "replace")
    parts = first.split(" ")
    if len(parts) == 1:
        signal_name = signal or ("md5" if first_len == 32 else None)
        prefix = b""
    elif len(parts) == 2 and fmt != "md5":
        try:
            signal_name = canonical_signal(parts[0])
        except KeyError:
            return None
        prefix = (parts[0] + " ").encode()
    else:
        return None
    if signal_name is None or SIGNALS[signal_name].compare == "vpdq":
        return None
    hex_len = SIGNALS[signal_name].hex_len
    if first_len != len(prefix) + hex_len or (fmt == "md5" and signal_name != "md5"):
        return None
    matrix = np.frombuffer(data, dtype=np.uint8).reshape(-1, width)
    if not (matrix[:, -1] == 10).all():
        return None
    if prefix and not (matrix[:, :len(prefix)] == np.frombuffer(prefix, dtype=np.uint8)).all():
        return None
    try:
        codes = hex_matrix_to_codes(matrix[:, len(prefix):-1])
    except ValueError:
        return None
    n = len(codes)
    first_index = first_occurrences(codes)
    codes = codes[first_index]
    table = pa.table({
        "signal_type": pa.repeat(pa.scalar(signal_name, pa.string()), len(codes)),
        "hash": codes_to_hex_array(codes),
        "entry_id": pa.nulls(len(codes), pa.string()),
        "category": pa.repeat(pa.scalar(category, pa.string()), len(codes)),
        "source": pa.nulls(len(codes), pa.string()),
        "added_at": pa.repeat(pa.scalar(now, pa.timestamp("us", tz="UTC")), len(codes)),
        "line": pa.array(first_index.astype(np.int64) + 1),
        "frames": pa.nulls(len(codes), ENTRY_SCHEMA.field("frames").type),
    }, schema=ENTRY_SCHEMA)
    detected = "md5" if not prefix and signal_name == "md5" and fmt != "pytx" else "pytx"
    return ParsedList(detected,
                      {signal_name: SignalEntries(table, codes)}, lines=n, duplicates_folded=n - len(codes))


def merge_parsed(parts: list[tuple[str, ParsedList]]) -> ParsedList:
    """One list from several files (a folder of vpdq files, one per video): duplicates across files fold.

    Each entry's `source` names its file when the file did not say, so its `line` can be found.
    """
    if len(parts) == 1:
        return parts[0][1]
    signals: dict[str, SignalEntries] = {}
    folded = 0
    for signal in sorted({s for _, p in parts for s in p.signals}):
        tables, codes = [], []
        for file_name, parsed in parts:
            entries = parsed.signals.get(signal)
            if entries is None:
                continue
            table = entries.table
            source = pa.array([file_name] * table.num_rows, pa.string())
            table = table.set_column(table.schema.get_field_index("source"), "source",
                                     pc.coalesce(table["source"], source))
            tables.append(table)
            codes.append(entries.codes)
        table = pa.concat_tables(tables)
        _, first = np.unique(np.array(table["hash"].to_pylist(), dtype=object), return_index=True)
        first.sort()
        folded += table.num_rows - len(first)
        signals[signal] = SignalEntries(table.take(first),
                                        np.concatenate(codes)[first] if codes[0] is not None else None)
    ignored: Counter = Counter()
    for _, parsed in parts:
        ignored.update(parsed.ignored)
    formats = sorted({p.format for _, p in parts})
    return ParsedList("+".join(formats), signals, lines=sum(p.lines for _, p in parts),
                      duplicates_folded=folded + sum(p.duplicates_folded for _, p in parts), ignored=ignored)
