"""Stream a Telegram Desktop export (`result.json`) without ever loading the whole file.

Two readers share one output, a stream of `ChatStart`, `RawBlock`/`RawMessage` and `ChatEnd` items:

* the fast path, for the layout Telegram Desktop writes (a single chat, pretty-printed with one
  space per level): raw newlines can only be whitespace in JSON, so the messages array splits on
  the line pattern that closes one message and opens the next. It yields blocks of whole messages
  as raw bytes; the normaliser parses them, and every piece must parse as one JSON object, which
  proves the split was structural;
* the general path (minified files, full-account exports with `chats.list`, anything unusual):
  ijson's C backend (`items` for a single chat, events for a full-account export).

If the fast path meets anything it does not expect, the caller restarts with the general path.
Errors name the file and the line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ijson
import orjson

from processing.errors import BadInputError

READ_BLOCK = 8 * 1024 * 1024
MESSAGES_OPEN = b'\n "messages": ['
MESSAGE_SEPARATOR = b"\n  },\n  {\n"
MESSAGES_CLOSE = b"\n  }\n ]"
HEADER_LIMIT = 1024 * 1024


@dataclass
class ChatStart:
    """A chat's header: everything but its messages."""

    header: dict[str, Any]
    line: int | None
    account_export: bool = False


@dataclass
class RawMessage:
    data: Any
    line: int | None


@dataclass
class RawBlock:
    """Whole messages from the fast path, braces stripped, joined by MESSAGE_SEPARATOR."""

    data: bytes
    first_line: int


@dataclass
class ChatEnd:
    header: dict[str, Any] = field(default_factory=dict)


ExportItem = ChatStart | RawMessage | RawBlock | ChatEnd


class FastPathMismatch(Exception):
    """The file is not in the layout the fast path expects; `line` points at the first surprise."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.line = line


def _parse_header(piece: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(piece)
    except orjson.JSONDecodeError as exc:
        raise FastPathMismatch(f"invalid JSON in the header: {exc.msg}", exc.lineno) from None
    if not isinstance(value, dict):
        raise FastPathMismatch("the export's top level is not a JSON object", 1)
    return value


def iter_fast(path: Path, on_bytes: Callable[[int], None] | None = None) -> Iterator[ExportItem]:
    """The fast path: yields the header, then blocks of messages as raw bytes.

    Each `RawBlock` holds whole messages without their outer braces, joined by
    `MESSAGE_SEPARATOR`; the normaliser splits and validates them. Raises FastPathMismatch on any
    surprise (then nothing it yielded may be kept).
    """
    report = on_bytes or (lambda _n: None)
    with open(path, "rb") as handle:
        head = handle.read(HEADER_LIMIT)
        report(len(head))
        start = head.find(MESSAGES_OPEN)
        if not head.startswith(b"{\n ") or start < 0:
            raise FastPathMismatch("not a pretty-printed single-chat export")
        header = _parse_header(head[:start].rstrip().rstrip(b",") + b"\n}")
        line = head.count(b"\n", 0, start) + 2
        yield ChatStart(header, 1)
        rest = head[start + len(MESSAGES_OPEN):]
        if rest.startswith(b"]"):
            _check_tail(rest[1:] + handle.read(HEADER_LIMIT), line)
            yield ChatEnd(header)
            return
        if not rest.startswith(b"\n  {\n"):
            raise FastPathMismatch("unexpected layout after the messages key", line)
        buffer = rest[len(b"\n  {\n"):]
        line += 1  # the line holding the first message's "{"
        while True:
            block = handle.read(READ_BLOCK)
            report(len(block))
            if not block:
                break
            buffer += block
            cut = buffer.rfind(MESSAGE_SEPARATOR)
            if cut >= 0:
                complete, buffer = buffer[:cut], buffer[cut + len(MESSAGE_SEPARATOR):]
                yield RawBlock(complete, line)
                line += complete.count(b"\n") + 3
        end = buffer.rfind(MESSAGES_CLOSE)
        if end < 0:
            raise FastPathMismatch("the messages array is not closed (truncated file?)",
                                   line + 1 + buffer.count(b"\n"))
        yield RawBlock(buffer[:end], line)
        line += buffer.count(b"\n", 0, end) + 2
        _check_tail(buffer[end + len(MESSAGES_CLOSE):], line)
        yield ChatEnd(header)


def _check_tail(tail: bytes, line: int) -> None:
    if tail.strip() != b"}":
        raise FastPathMismatch("unexpected content after the messages array", line)


class _CountingReader:
    """A file wrapper that knows how far ijson has read, to place errors near a line."""

    def __init__(self, handle: Any, on_bytes: Callable[[int], None] | None) -> None:
        self.handle = handle
        self.on_bytes = on_bytes
        self.lines_before_block = 1
        self.block_lines = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.lines_before_block += self.block_lines
        self.block_lines = data.count(b"\n")
        if self.on_bytes:
            self.on_bytes(len(data))
        return data

    def near_line(self) -> int:
        return self.lines_before_block + self.block_lines


def iter_general(path: Path, on_bytes: Callable[[int], None] | None = None) -> Iterator[ExportItem]:
    """The general path: any valid export layout, single chat or full account.

    A single-chat export streams its messages with `ijson.items` (objects built in C); a
    full-account export is walked event by event, chat by chat.
    """
    try:
        header = _single_chat_header(path)
        with open(path, "rb") as raw_handle:
            reader = _CountingReader(raw_handle, on_bytes)
            if header is not None:
                yield ChatStart(header, 1)
                for value in ijson.items(reader, "messages.item", use_float=True, buf_size=64 * 1024):
                    yield RawMessage(value, reader.near_line())
                yield ChatEnd(header)
            else:
                yield from _walk_events(ijson.parse(reader, use_float=True, buf_size=64 * 1024), reader)
    except ijson.common.IncompleteJSONError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid JSON"
        if "premature EOF" in message or "Incomplete" in message:
            raise BadInputError(f"{path}:{_last_line(path)}: unexpected end of file: the export is "
                                "truncated or incomplete; nothing was imported") from None
        raise BadInputError(f"{path}: invalid JSON ({message}); nothing was imported") from None
    except ijson.common.JSONError as exc:
        raise BadInputError(f"{path}: invalid JSON ({exc}); nothing was imported") from None
    except _LayoutError as exc:
        raise BadInputError(f"{path}: {exc}; nothing was imported") from None


def _last_line(path: Path) -> int:
    lines = 1
    with open(path, "rb") as handle:
        while block := handle.read(READ_BLOCK):
            lines += block.count(b"\n")
    return lines


def _single_chat_header(path: Path) -> dict[str, Any] | None:
    """The top-level scalars before `messages` when the file is a single-chat export, else None."""
    header: dict[str, Any] = {}
    with open(path, "rb") as handle:
        events = ijson.parse(handle, use_float=True, buf_size=64 * 1024)
        for prefix, event, value in events:
            if prefix == "" and event not in ("start_map", "map_key"):
                raise _LayoutError("the export's top level is not a JSON object")
            if prefix == "messages" and event == "start_array":
                return header
            if prefix in ("chats", "left_chats"):
                return None
            if prefix and "." not in prefix and event in _SCALARS:
                header[prefix] = value
    return None


class _LayoutError(ValueError):
    """Valid JSON, but not shaped like a Telegram Desktop export."""


_ACCOUNT_CHATS = ("chats.list.item", "left_chats.list.item")
_SCALARS = ("string", "number", "boolean", "null")


def _walk_events(events: Iterator[tuple[str, str, Any]], reader: _CountingReader) -> Iterator[ExportItem]:
    """Turn ijson events into chats and messages, building one message object at a time."""
    top: dict[str, Any] = {}
    single_chat = False
    chat: str | None = None  # prefix of the full-account chat being read
    header: dict[str, Any] = {}
    started = False
    first = True
    for prefix, event, value in events:
        if first:
            first = False
            if event != "start_map":
                raise _LayoutError("the export's top level is not a JSON object")
        if chat is None and event == "start_map" and prefix in _ACCOUNT_CHATS:
            chat, header, started = prefix, {}, False
            continue
        base = f"{chat}." if chat else ""
        if chat is not None and event == "end_map" and prefix == chat:
            if not started:
                yield ChatStart(header, reader.near_line(), account_export=True)
            yield ChatEnd(header)
            chat = None
            continue
        if chat is None and prefix.startswith(("chats", "left_chats")):
            continue
        if prefix == f"{base}messages" and event == "start_array":
            started = True
            single_chat = single_chat or chat is None
            yield ChatStart(header if chat else top, reader.near_line(), account_export=chat is not None)
            continue
        if prefix == f"{base}messages.item":
            line = reader.near_line()
            if event in ("start_map", "start_array"):
                yield RawMessage(_build_value(events, event), line)
            elif event in _SCALARS:
                yield RawMessage(value, line)
            continue
        if prefix.startswith(f"{base}messages"):
            continue
        key = prefix[len(base):]
        if key and "." not in key and event in _SCALARS:
            (header if chat else top)[key] = value
    if single_chat:
        yield ChatEnd(top)
    elif "type" in top:
        yield ChatStart(top, None)
        yield ChatEnd(top)


def _build_value(events: Iterator[tuple[str, str, Any]], first_event: str) -> Any:
    builder = ijson.ObjectBuilder()
    builder.event(first_event, None)
    depth = 1
    for _prefix, event, value in events:
        builder.event(event, value)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return builder.value
    raise _LayoutError("unexpected end of file inside a message")


