"""Generate a large Telegram Desktop "Export chat history" JSON of a public channel, for benchmarks.

The file is written message by message (memory stays flat whatever N is), yet it is byte-identical to
`json.dumps(doc, ensure_ascii=False, indent=1)` of the whole document (tdesktop's layout: 1-space indent).
Text is joined from pools of pre-generated half-sentences, so 1M messages take about a minute yet texts
rarely repeat. About 420 bytes a message: 1M messages make ~420 MB.

    python bench/gen_export.py OUT.json --messages 1000000 [--seed 1]
    python bench/gen_export.py --self-check
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import io
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHANNEL_NAME = "Bench Channel"
CHANNEL_ID = 1888000001
FROM_ID = f"channel{CHANNEL_ID}"
EPOCH = dt.date(1970, 1, 1)
START_UNIX = int(dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp())
STEP_SECONDS = 45
POOL_SIZE = 20_000
BATCH = 2_000

Part = str | dict[str, str]
Fragment = tuple[Part, ...]
Pools = tuple[list[Fragment], list[Fragment]]  # sentence openers, sentence closers

_VOCABULARY = (  # mostly English, some Cyrillic, Latin accents, CJK, Greek, Hebrew, Arabic, emoji
    "the of and to in is for on that with as by this from at are be it an was or will have not new "
    "channel update report market price today news people city government energy water school health "
    "police road weather event video photo live breaking official statement meeting council project "
    "season team match result goal player coach fans ticket concert music festival film review book "
    "science research study data model system network service support release version security patch "
    "morning evening night week month year local national regional international community public "
    "announcement schedule delay train bus airport flight border traffic accident fire rescue storm "
    "election vote campaign minister president parliament law court decision appeal budget tax bank "
    "Привет новости сегодня город погода канал обновление рынок цена люди вода школа здоровье "
    "café naïve résumé straße über größe año mañana crème déjà façade jalapeño Zürich München "
    "ニュース 今日 東京 天気 更新 新闻 今天 北京 频道 消息 γειά ειδήσεις σήμερα καιρός שלום חדשות "
    "مرحبا أخبار اليوم 🔥 🚀 ✅ ⚡ 📢 🎉 👉 💬 📈 🌍"
)
WORDS = _VOCABULARY.split()
HASHTAGS = ("#news", "#update", "#breaking", "#sport", "#weather", "#tech", "#новости", "#économie",
            "#live", "#bench", "#ニュース", "#city")
MENTIONS = ("@bench_channel", "@newsdesk", "@city_updates", "@weather_bot", "@tech_daily", "@support")
DOMAINS = ("example.com", "news.example.org", "t.me", "telegra.ph", "bench.test", "media.example.net")
FORWARD_NAMES = ("City Updates", "Tech Daily", "Новости Города", "Weather Desk", "Zürich Live",
                 "東京ニュース")
REACTIONS = ("👍", "❤", "🔥", "👏", "😁", "🤔", "😢", "🎉", "🤩", "👎")


def _words(rng: random.Random, low: int, high: int) -> str:
    """A run of vocabulary words; lengths vary so message sizes vary."""
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))


def _url(rng: random.Random) -> str:
    return f"https://{rng.choice(DOMAINS)}/{rng.choice(WORDS).lower()}/{rng.randrange(10**6)}"


def _entity(rng: random.Random) -> dict[str, str]:
    """One formatted entity, as tdesktop writes it inside a message's `text` list."""
    kind = rng.choices(("hashtag", "link", "mention", "bold", "text_link"), weights=(4, 2, 2, 3, 2))[0]
    if kind == "hashtag":
        return {"type": kind, "text": rng.choice(HASHTAGS)}
    if kind == "mention":
        return {"type": kind, "text": rng.choice(MENTIONS)}
    if kind == "link":
        return {"type": kind, "text": _url(rng)}
    if kind == "bold":
        return {"type": kind, "text": _words(rng, 1, 4)}
    return {"type": kind, "text": _words(rng, 1, 3), "href": _url(rng)}


def _fragment(rng: random.Random, opener: bool) -> Fragment:
    """Half a sentence, sometimes with an entity inside; it starts and ends with plain text so halves join."""
    body = _words(rng, 1, 3)
    if opener:
        body = body[:1].upper() + body[1:]
    else:
        body += rng.choice((".", ".", ".", "!", "?", "…"))
    if rng.random() < 0.85 or " " not in body:
        return (body,)
    head, _, tail = body.partition(" ")
    return (head + " ", _entity(rng), " " + tail)


def fragment_pools(rng: random.Random, size: int = POOL_SIZE) -> Pools:
    """Openers and closers, generated once: any pair makes a sentence, so texts rarely repeat exactly
    (Parquet must not get an unrealistically easy dictionary) while each message costs only a join."""
    return [_fragment(rng, True) for _ in range(size)], [_fragment(rng, False) for _ in range(size)]


def _join(fragments: list[Fragment]) -> list[Part]:
    """Concatenate fragments with a space, merging the plain strings that meet, as tdesktop would."""
    parts: list[Part] = list(fragments[0])
    for fragment in fragments[1:]:
        parts[-1] = f"{parts[-1]} {fragment[0]}"
        parts.extend(fragment[1:])
    return parts


def _text_parts(rng: random.Random, pools: Pools) -> list[Part]:
    """One to three sentences, each an opener and a closer."""
    roll = rng.random()
    sentences = 1 if roll < 0.85 else 2 if roll < 0.98 else 3
    openers, closers = pools
    fragments: list[Fragment] = []
    for _ in range(sentences):
        fragments += (rng.choice(openers), rng.choice(closers))
    return _join(fragments)


def _text_fields(parts: list[Part]) -> tuple[str | list[Part], list[dict[str, str]]]:
    """`text` is a plain string when there is no entity, else a mixed list; entities list every part."""
    if len(parts) == 1:
        return parts[0], [{"type": "plain", "text": parts[0]}]  # type: ignore[list-item,dict-item]
    return parts, [{"type": "plain", "text": p} if isinstance(p, str) else p for p in parts]


@functools.lru_cache(maxsize=4096)
def _day(days: int) -> str:
    return (EPOCH + dt.timedelta(days=days)).strftime("%Y-%m-%d")


def _stamp(unix: int) -> tuple[str, str]:
    """tdesktop's `date` and `date_unixtime`; plain arithmetic, strftime per message is too slow."""
    days, secs = divmod(unix, 86400)
    hours, rest = divmod(secs, 3600)
    return f"{_day(days)}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}", str(unix)


def make_message(rng: random.Random, pools: Pools, msg_id: int) -> dict[str, Any]:
    """One channel post, keys in tdesktop's order; optional keys appear with realistic frequencies."""
    unix = START_UNIX + STEP_SECONDS * msg_id
    date, unixtime = _stamp(unix)
    msg: dict[str, Any] = {"id": msg_id, "type": "message", "date": date, "date_unixtime": unixtime}
    if rng.random() < 0.12:
        msg["edited"], msg["edited_unixtime"] = _stamp(unix + rng.randint(30, 7200))
    msg["from"] = CHANNEL_NAME
    msg["from_id"] = FROM_ID
    if rng.random() < 0.06:
        msg["forwarded_from"] = rng.choice(FORWARD_NAMES)
    if msg_id > 1 and rng.random() < 0.08:
        msg["reply_to_message_id"] = rng.randint(max(1, msg_id - 500), msg_id - 1)
    msg["text"], msg["text_entities"] = _text_fields(_text_parts(rng, pools))
    if rng.random() < 0.2:
        emojis = rng.sample(REACTIONS, 1 if rng.random() < 0.6 else 2)
        msg["reactions"] = [{"type": "emoji", "count": rng.randint(1, 500), "emoji": e} for e in emojis]
    return msg


def iter_messages(n: int, seed: int) -> Iterator[dict[str, Any]]:
    """Messages 1..n, deterministic for a given seed."""
    rng = random.Random(seed)
    pools = fragment_pools(rng)
    for msg_id in range(1, n + 1):
        yield make_message(rng, pools, msg_id)


def _head_and_tail() -> tuple[str, str]:
    """The document text around the messages, cut from json.dumps itself so the layout cannot drift."""
    marker = "\x00marker\x00"
    doc = {"name": CHANNEL_NAME, "type": "public_channel", "id": CHANNEL_ID, "messages": [marker]}
    text = json.dumps(doc, ensure_ascii=False, indent=1)
    head, tail = text.split("  " + json.dumps(marker))
    return head, tail


_ENCODER = json.JSONEncoder(ensure_ascii=False, indent=1)  # what json.dumps builds per call; reused


def _render(msg: dict[str, Any]) -> str:
    """A message as it appears at depth 2 of the document: json.dumps(indent=1), two more spaces a line."""
    return "  " + _ENCODER.encode(msg).replace("\n", "\n  ")


def write_export(out: io.TextIOBase, n: int, seed: int) -> None:
    """Stream the document to `out`, a batch of messages at a time."""
    if n == 0:
        doc = {"name": CHANNEL_NAME, "type": "public_channel", "id": CHANNEL_ID, "messages": []}
        out.write(json.dumps(doc, ensure_ascii=False, indent=1))
        return
    head, tail = _head_and_tail()
    out.write(head)
    batch: list[str] = []
    separator = ""  # the ",\n" between batches goes before every batch but the first
    for msg in iter_messages(n, seed):
        batch.append(_render(msg))
        if len(batch) == BATCH:
            out.write(separator + ",\n".join(batch))
            batch.clear()
            separator = ",\n"
    if batch:
        out.write(separator + ",\n".join(batch))
    out.write(tail)


def self_check(n: int = 50, seed: int = 1) -> None:
    """Prove the streamed file equals json.dumps of the whole document, including across a batch edge."""
    for size in (0, 1, n, BATCH, BATCH + 1):
        buf = io.StringIO()
        write_export(buf, size, seed)
        messages = list(iter_messages(size, seed))
        doc = {"name": CHANNEL_NAME, "type": "public_channel", "id": CHANNEL_ID, "messages": messages}
        if buf.getvalue() != json.dumps(doc, ensure_ascii=False, indent=1):
            raise AssertionError(f"streamed export differs from json.dumps for n={size}")
        if json.loads(buf.getvalue()) != doc:
            raise AssertionError(f"streamed export does not round-trip for n={size}")
    print("self-check ok: streamed output is byte-identical to json.dumps(doc, indent=1)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", type=Path, help="output JSON file")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--self-check", action="store_true", help="verify the streaming format and exit")
    args = parser.parse_args(argv)
    if args.self_check:
        self_check()
        return 0
    if args.out is None:
        parser.error("OUT is required unless --self-check is given")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tmp = args.out.with_name(args.out.name + ".part")
    with tmp.open("w", encoding="utf-8", buffering=1 << 20) as out:
        write_export(out, args.messages, args.seed)
    tmp.replace(args.out)  # never leave a truncated file under the final name
    size = args.out.stat().st_size
    print(f"wrote {args.out}: {args.messages} messages, {size / 1e6:.1f} MB "
          f"in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
