"""A fictional public channel's Telegram Desktop JSON export, generated at run time.

Why: the demo and the tests need a realistic export (tdesktop's keys, key order, placeholders,
albums, forwards, re-shared media) without committing any media file or touching Telegram.
Everything is drawn procedurally from `seed`, so the same seed gives byte-identical files on the
same machine (JPEG/MP4/WebP bytes depend on the installed libjpeg/libavcodec/libwebp versions).

Content is benign: a nature/city photography channel. Some photos are "re-shared material":
a base image first posted as-is, then re-posted later re-encoded at JPEG quality 50, resized to
50%, cropped ~5% and/or watermarked, and (for two bases) forwarded byte-identical.
With the defaults (seed=7, messages=300) the recurring photos are, as
original message id -> re-post message ids:

    8 -> 98, 145, 153      (watermark; q50; half+q50)
    15 -> 129, 190         (watermark+q50; crop)
    20 -> 94, 115          (q50; half)
    90 -> 107, 111, 224    (crop+watermark; half; identical forward)
    103 -> 208, 265, 268   (identical forward; crop; watermark)
    234 -> 245, 302        (crop+watermark; half+q50)

Re-posts are single-photo posts, never album members. Ids ascend with occasional gaps (deleted
posts), so ids run past `messages`. Dates are the exporter's local time, fixed at UTC+2.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import pathlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

DEMO_CHANNEL_ID = 1999000001
DEMO_USERNAME = "chanwatch_demo"
DEMO_TITLE = "Chanwatch Demo Channel"

_FROM_ID = f"channel{DEMO_CHANNEL_ID}"
# tdesktop writes the exporting machine's local time; fixed here so the host TZ never leaks in.
_TZ = dt.timezone(dt.timedelta(hours=2))
_START = dt.datetime(2026, 9, 1, 8, 0, tzinfo=_TZ)
_SPAN_DAYS = 42
_NOT_INCLUDED = "(File not included. Change data exporting settings to download.)"
_TOO_BIG = "(File exceeds maximum size. Change data exporting settings to download.)"
_OTHER_CHANNELS = ("Alpine Light Collective", "Harbour Street Frames", "Morning Fog Archive")
_WATERMARKS = ("@alpine_light", "© Harbour Street Frames", "morningfog.example.org")
_AUTHORS = ("Mira Kovač", "Tomas Lind", "Ines Okafor")
_PLACES = ("Lake Verrin", "Kestrel Ridge", "the Old Harbour", "Mill Street", "Brannock Woods",
           "the East Pier", "Saltmarsh Flats", "Linden Square", "Copper Hill", "the Night Market")
_TAGS = ("#nature", "#citywalk", "#goldenhour", "#fog", "#autumn", "#streetphotography", "#lake", "#birds")
_EMOJI = ("👍", "❤", "🔥", "😍", "👏", "🤩", "🌅")
_CUSTOM_EMOJI = ("5368324170671202286", "5409029658794537988")
_PHOTO_SIZES = ((1280, 960), (960, 1280), (800, 600), (800, 600), (1280, 853))
# Re-post transforms per base image; each base gets 2-3 of these, in this rotation.
_REPOST_PLANS = (
    (("q50",), ("watermark",), ("half", "q50")),
    (("crop",), ("watermark", "q50")),
    (("half",), ("crop", "watermark"), ()),
    (("q50",), ("half",)),
    (("crop",), ("watermark",), ()),
    (("half", "q50"), ("crop", "watermark")),
)
_ALBUM_SIZES = (3, 4, 3, 4)
_SINGLE_PHOTOS = 18
_MIN_FILLERS = 25

Part = tuple[str, str, str | None]  # (entity type, text, href)


@dataclass
class _Post:
    """One planned message; media fields are filled in when the media is rendered."""

    kind: str
    image: int = 0
    transforms: tuple[str, ...] = ()
    base: int | None = None
    album: int | None = None
    id: int = 0
    ts: int = 0
    edited: int | None = None
    author: str | None = None
    forwarded_from: str | None = None
    reply_to: int | None = None
    text: list[Part] = field(default_factory=list)
    reactions: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, Any] = field(default_factory=dict)


def build_demo_export(out_dir: pathlib.Path, *, seed: int = 7, messages: int = 300) -> pathlib.Path:
    """Write out_dir/result.json plus media subfolders; return the path of result.json.

    Deterministic: same seed -> byte-identical files. Overwrites existing files in out_dir; writes
    each file atomically (tmp + os.replace) and skips rewriting a file whose bytes would be
    identical (so a second run leaves mtimes alone). Raises ValueError if `messages` is too small
    to hold the fixed media set (currently 89).
    """
    if messages < _min_messages():
        raise ValueError(f"messages must be >= {_min_messages()} to hold the demo media, got {messages}")
    out_dir = pathlib.Path(out_dir)
    rnd = random.Random(seed)
    posts = _plan(rnd, messages)
    _assign_ids_and_dates(posts, rnd)
    _decorate(posts, rnd)
    files, originals = _render_media(posts, seed)
    doc = {"name": DEMO_TITLE, "type": "public_channel", "id": DEMO_CHANNEL_ID,
           "messages": [_message_json(p) for p in posts]}
    files["result.json"] = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
    for rel, data in files.items():
        _write_if_changed(out_dir / rel, data)
    _write_if_changed(out_dir.parent / DEMO_HASHLIST_NAME, _known_material_list(originals))
    return out_dir / "result.json"


DEMO_HASHLIST_NAME = "demo-hashlist.csv"


def _known_material_list(originals: dict[int, bytes]) -> bytes:
    """A hash list of half the base images as first posted (before their re-posts were transformed).

    It stands in for a hotline's list of known material: hashes only, in the plain CSV format, with
    PDQ for every listed image and the MD5 of the first, which also catches its byte-identical forwards.
    """
    from processing.hashing import hash_media

    lines = ["signal_type,hash,entry_id,category,source"]
    for n, image in enumerate(sorted(originals)[::2]):
        hashes = hash_media(originals[image])
        lines.append(f"pdq,{hashes.pdq},demo-known-{image},demo-known-material,chanwatch demo")
        if n == 0:
            lines.append(f"md5,{hashes.md5},demo-known-{image}-file,demo-known-material,chanwatch demo")
    return ("\n".join(lines) + "\n").encode()


def _min_messages() -> int:
    """Smallest `messages` that fits the fixed media set plus enough text posts for replies."""
    return 1 + len(_feature_units()) + sum(_ALBUM_SIZES) - len(_ALBUM_SIZES) + _MIN_FILLERS


# --- planning ---------------------------------------------------------------------------------


def _feature_units() -> list[list[_Post]]:
    """Every media-bearing unit (an album is one unit), before shuffling."""
    units: list[list[_Post]] = []
    image = 0
    for base, plan in enumerate(_REPOST_PLANS):
        units.append([_Post("photo", image=image, base=base)])
        units += [[_Post("repost", image=image, base=base, transforms=t)] for t in plan]
        image += 1
    for album, size in enumerate(_ALBUM_SIZES):
        units.append([_Post("photo", image=image + i, album=album) for i in range(size)])
        image += size
    units += [[_Post("photo", image=image + i)] for i in range(_SINGLE_PHOTOS)]
    image += _SINGLE_PHOTOS
    units += [[_Post(kind)] for kind in ("photo_skip", "photo_skip", "video", "video", "video_skip",
                                          "animation", "sticker", "sticker", "txt", "pdf")]
    return units


def _plan(rnd: random.Random, messages: int) -> list[_Post]:
    """Order the units at random, keeping each base image's original before its re-posts."""
    units = _feature_units()
    fillers = messages - 1 - sum(len(u) for u in units)
    units += [[_Post("text")] for _ in range(fillers)]
    rnd.shuffle(units)
    for base in range(len(_REPOST_PLANS)):
        slots = [i for i, u in enumerate(units) if u[0].base == base]
        group = sorted((units[i] for i in slots), key=lambda u: u[0].kind != "photo")
        for i, unit in zip(slots, group, strict=True):
            units[i] = unit
    return [_Post("service")] + [p for u in units for p in u]


def _assign_ids_and_dates(posts: list[_Post], rnd: random.Random) -> None:
    """Ascending ids with a few gaps; daytime dates over ~6 weeks; an album shares one date."""
    starts = {i for i, p in enumerate(posts) if p.album is None or i == 0 or posts[i - 1].album != p.album}
    times = sorted(rnd.randrange(_SPAN_DAYS) * 86400 + rnd.randint(7 * 3600, 23 * 3600)
                   for _ in range(len(starts) - 1))
    base = int(_START.timestamp())
    stamps = [base]
    for t in times:
        stamps.append(max(base + t - 8 * 3600, stamps[-1] + rnd.randint(1, 90)))
    next_id, unit = 0, -1
    for i, post in enumerate(posts):
        if i in starts:
            unit += 1
            next_id += rnd.randint(2, 4) if i > 0 and rnd.random() < 0.04 else 1
        else:
            next_id += 1
        post.id, post.ts = next_id, stamps[unit]


# --- text and decorations ---------------------------------------------------------------------


def _parts(*items: tuple[str, str] | tuple[str, str, str] | str) -> list[Part]:
    """Build a text from plain strings and (type, text[, href]) tuples."""
    out: list[Part] = []
    for item in items:
        if isinstance(item, str):
            out.append(("plain", item, None))
        else:
            out.append((item[0], item[1], item[2] if len(item) == 3 else None))
    return out


def _filler_text(rnd: random.Random) -> list[Part]:
    """A short channel post mixing plain text and tdesktop's entity types."""
    place, tag, tag2 = rnd.choice(_PLACES), rnd.choice(_TAGS), rnd.choice(_TAGS)
    slug = place.lower().replace("the ", "").replace(" ", "-")
    options: list[Callable[[], list[Part]]] = [
        lambda: _parts("Morning walk along ", ("bold", place), ". The fog lifted around nine. ",
                       ("hashtag", tag), " ", ("hashtag", tag2)),
        lambda: _parts("New print series is up: ", ("link", f"https://example.org/prints/{slug}")),
        lambda: _parts("Thanks to ", ("mention", "@alpine_light"), " for the tip about ",
                       ("bold", place), "!"),
        lambda: _parts(("italic", "Light was flat today."), " Sometimes you just walk and look."),
        lambda: _parts("Full gallery from ", place, " is ",
                       ("text_link", "here", f"https://example.org/gallery/{slug}"), " ", ("hashtag", tag)),
        lambda: _parts(f"Next photo walk: Saturday 8:00, meeting point at {place}. Bring a warm layer."),
        lambda: _parts("Gear note: ", ("bold", "35mm"), " all week, nothing else. ", ("hashtag", "#gear")),
        lambda: _parts("Share the channel with friends: ", ("mention", f"@{DEMO_USERNAME}")),
        lambda: _parts("Reminder: ", ("italic", "no drones near the bird reserve"), ". ",
                       ("hashtag", "#birds")),
        lambda: _parts(f"Which do you prefer, sunrise or blue hour at {place}? Vote with reactions."),
    ]
    return rnd.choice(options)()


def _caption(rnd: random.Random, post: _Post) -> list[Part]:
    """Photo captions: mostly short with hashtags, sometimes empty (photo-only posts)."""
    if post.kind == "repost":
        if rnd.random() < 0.5:
            return []
        return _parts("Found this one again ", ("hashtag", rnd.choice(_TAGS)))
    if rnd.random() < 0.3:
        return []
    place = rnd.choice(_PLACES)
    return _parts(f"{place}, {rnd.choice(('early light', 'after the rain', 'late evening', 'first frost'))} ",
                  ("hashtag", rnd.choice(_TAGS)))


def _decorate(posts: list[_Post], rnd: random.Random) -> None:
    """Texts, signatures, forwards, replies, edits and reactions, all drawn from `rnd`."""
    sign_from = posts[0].ts + 10 * 86400
    for i, post in enumerate(posts):
        if post.kind == "service":
            continue
        first_in_album = post.album is None or posts[i - 1].album != post.album
        post.text = _post_text(rnd, post) if first_in_album else []
        if post.ts >= sign_from and rnd.random() < 0.7:
            post.author = rnd.choice(_AUTHORS)
        _maybe_forward(rnd, post)
        if post.kind == "text" and post.forwarded_from is None and rnd.random() < 0.08:
            post.reply_to = rnd.choice([p.id for p in posts[1:i]] or [None])
            if post.reply_to is not None:
                post.text = _reply_text(rnd)
        if post.text and rnd.random() < 0.09:
            post.edited = post.ts + rnd.randint(120, 6 * 3600)
        post.reactions = _reactions(rnd) if rnd.random() < 0.45 else []


def _reply_text(rnd: random.Random) -> list[Part]:
    """Follow-ups the channel posts as replies to its own earlier posts."""
    return rnd.choice([
        _parts("Update on this one: ", ("italic", "the trail is open again"), "."),
        _parts("More from this spot next week."),
        _parts("Asked in the comments: ", ("bold", "f/8, 1/250 s, ISO 200"), "."),
        _parts("Prints of this one are ", ("text_link", "available here", "https://example.org/shop"), "."),
    ])


def _post_text(rnd: random.Random, post: _Post) -> list[Part]:
    """The caption or body for one message, by kind."""
    fixed = {
        "video": lambda: _parts("Short clip from ", ("bold", rnd.choice(_PLACES)), " ",
                                ("hashtag", "#video")),
        "video_skip": lambda: _parts("4K timelapse, full length ", ("hashtag", "#timelapse")),
        "txt": lambda: _parts("Route notes for Saturday's walk."),
        "pdf": lambda: _parts("Flyer for the autumn walks, feel free to share."),
        "photo_skip": lambda: _caption(rnd, post),
    }
    if post.kind == "text":
        return _filler_text(rnd)
    if post.kind in ("photo", "repost"):
        return _caption(rnd, post)
    return fixed.get(post.kind, list)()


def _maybe_forward(rnd: random.Random, post: _Post) -> None:
    """Re-posts are often forwards from another channel; identical re-posts always are."""
    chance = {"repost": 0.5 if post.transforms else 1.0, "text": 0.06}.get(post.kind, 0.0)
    if chance and rnd.random() < chance:
        post.forwarded_from = rnd.choice(_OTHER_CHANNELS)


def _reactions(rnd: random.Random) -> list[dict[str, Any]]:
    """1-3 emoji reactions, sometimes a custom emoji, most-used first as Telegram lists them."""
    out: list[dict[str, Any]] = [{"type": "emoji", "count": rnd.randint(1, 60), "emoji": e}
                                 for e in rnd.sample(_EMOJI, rnd.randint(1, 3))]
    if rnd.random() < 0.15:
        out.append({"type": "custom_emoji", "count": rnd.randint(1, 9),
                    "document_id": rnd.choice(_CUSTOM_EMOJI)})
    return sorted(out, key=lambda r: -r["count"])


# --- JSON -------------------------------------------------------------------------------------


def _local(ts: int) -> dt.datetime:
    """Unix seconds as the exporter's naive local time."""
    return dt.datetime.fromtimestamp(ts, _TZ).replace(tzinfo=None)


def _text_json(parts: list[Part]) -> tuple[str | list[Any], list[dict[str, str]]]:
    """tdesktop's `text` (string, or mixed list) and `text_entities` (always objects)."""
    entities = []
    for kind, text, href in parts:
        entity = {"type": kind, "text": text}
        if href is not None:
            entity["href"] = href
        entities.append(entity)
    if not parts:
        return "", []
    if len(parts) == 1 and parts[0][0] == "plain":
        return parts[0][1], entities
    mixed: list[Any] = [e["text"] if e["type"] == "plain" else e for e in entities]
    return mixed, entities


def _message_json(post: _Post) -> dict[str, Any]:
    """One message object with tdesktop's keys in tdesktop's order."""
    msg: dict[str, Any] = {"id": post.id, "type": "service" if post.kind == "service" else "message",
                           "date": _local(post.ts).isoformat(), "date_unixtime": str(post.ts)}
    if post.kind == "service":
        msg.update(actor=DEMO_TITLE, actor_id=_FROM_ID, action="create_channel", title=DEMO_TITLE,
                   text="", text_entities=[])
        return msg
    if post.edited is not None:
        msg.update(edited=_local(post.edited).isoformat(), edited_unixtime=str(post.edited))
    msg.update({"from": DEMO_TITLE, "from_id": _FROM_ID})
    optional = (("author", post.author), ("forwarded_from", post.forwarded_from),
                ("reply_to_message_id", post.reply_to))
    msg.update({k: v for k, v in optional if v is not None})
    msg.update(post.media)
    msg["text"], msg["text_entities"] = _text_json(post.text)
    if post.reactions:
        msg["reactions"] = post.reactions
    return msg


# --- media ------------------------------------------------------------------------------------


def _render_media(posts: list[_Post], seed: int) -> tuple[dict[str, bytes], dict[int, bytes]]:
    """Draw every media file and fill in each post's media keys.

    Returns relative path -> bytes, and the base images' original bytes (by image number).
    """
    files: dict[str, bytes] = {}
    originals: dict[int, bytes] = {}
    counters = {"photo": 0, "video": 0}
    for post in posts:
        if post.kind in ("photo", "repost", "photo_skip"):
            counters["photo"] += 1
            _render_photo(post, seed, counters["photo"], originals, files)
        elif post.kind in ("video", "video_skip", "animation"):
            counters["video"] += post.kind == "video"
            _render_video(post, seed, counters["video"], files)
        elif post.kind == "sticker":
            _render_sticker(post, seed, files)
        elif post.kind in ("txt", "pdf"):
            _render_document(post, files)
    return files, originals


def _photo_path(index: int, ts: int) -> str:
    """tdesktop's photo name: photos/photo_<n>@<dd-mm-yyyy_HH-MM-SS>.jpg in local time."""
    return f"photos/photo_{index}@{_local(ts).strftime('%d-%m-%Y_%H-%M-%S')}.jpg"


def _render_photo(post: _Post, seed: int, index: int, originals: dict[int, bytes],
                  files: dict[str, bytes]) -> None:
    """A fresh scene, a transformed re-post of a base image, or a not-included placeholder."""
    if post.kind == "photo_skip":
        width, height = _PHOTO_SIZES[index % len(_PHOTO_SIZES)]
        post.media = {"photo": _NOT_INCLUDED, "photo_file_size": 90_000 + index * 1117,
                      "width": width, "height": height}
        return
    if post.kind == "repost":
        data = _transform(originals[post.image], post.transforms, seed, post.id)
    else:
        width, height = _PHOTO_SIZES[(post.image * 7 + seed) % len(_PHOTO_SIZES)]
        data = _jpeg(_scene(seed, post.image, width, height), 85)
        if post.base is not None:
            originals[post.image] = data
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
    path = _photo_path(index, post.ts)
    files[path] = data
    post.media = {"photo": path, "photo_file_size": len(data), "width": width, "height": height}


def _jpeg(img: Image.Image, quality: int) -> bytes:
    """Baseline JPEG bytes, no EXIF, so output depends only on pixels and quality."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _transform(original: bytes, steps: tuple[str, ...], seed: int, salt: int) -> bytes:
    """Re-shared material: decode the posted JPEG, apply the edits, re-encode."""
    if not steps:
        return original
    rnd = random.Random(f"{seed}:{salt}")
    img = Image.open(io.BytesIO(original)).convert("RGB")
    for step in steps:
        if step == "half":
            img = img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)
        elif step == "crop":
            dx, dy = round(img.width * 0.05), round(img.height * 0.05)
            left, top = rnd.randint(0, dx), rnd.randint(0, dy)
            img = img.crop((left, top, img.width - (dx - left), img.height - (dy - top)))
        elif step == "watermark":
            img = _watermark(img, rnd.choice(_WATERMARKS))
    return _jpeg(img, 50 if "q50" in steps else 87)


def _watermark(img: Image.Image, label: str) -> Image.Image:
    """Semi-opaque text in the lower right corner, as aggregator channels stamp photos."""
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    try:
        font: Any = ImageFont.load_default(size=max(14, img.width // 28))
    except (TypeError, OSError):  # Pillow without FreeType: fixed bitmap font
        font = ImageFont.load_default()
    left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
    x, y = img.width - (right - left) - img.width // 40, img.height - (bottom - top) - img.height // 30
    draw.text((x + 2, y + 2), label, font=font, fill=(0, 0, 0, 120))
    draw.text((x, y), label, font=font, fill=(255, 255, 255, 190))
    return Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")


def _scene(seed: int, key: int, width: int, height: int) -> Image.Image:
    """A natural-looking procedural photo: sky gradient, sun glow, land or skyline, blobs, grain.

    The smooth layers are drawn at half size and upscaled (fast, and soft like a real lens);
    only the grain is drawn at full size.
    """
    rng = np.random.default_rng([seed, key])
    small_w, small_h = max(1, width // 2), max(1, height // 2)
    yy = np.linspace(0.0, 1.0, small_h, dtype=np.float32)[:, None]
    xx = np.linspace(0.0, 1.0, small_w, dtype=np.float32)[None, :]
    img = _sky(rng, yy, xx)
    horizon = float(rng.uniform(0.45, 0.68))
    img = _skyline(rng, img, horizon) if rng.random() < 0.4 else _hills(rng, img, yy, xx, horizon)
    img = _blobs(rng, img) * _texture(rng, small_w, small_h)[..., None]
    small = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    full = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    sigma = np.float32(rng.uniform(1.5, 3.5))
    grain = (rng.standard_normal((height, width, 1), dtype=np.float32) * sigma).astype(np.int16)
    return Image.fromarray(np.clip(full + grain, 0, 255).astype(np.uint8), "RGB")


def _texture(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Multiplicative fractal mottling around 1.0, so no region is perfectly smooth."""
    tex = np.zeros((height, width), np.float32)
    for cells, amp in ((4, 0.08), (9, 0.05), (20, 0.03), (45, 0.02)):
        grid = rng.uniform(-amp, amp, (max(2, cells * height // width), cells)).astype(np.float32)
        tex += np.asarray(Image.fromarray(grid, "F").resize((width, height), Image.Resampling.BICUBIC))
    return 1.0 + tex


def _sky(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Vertical two-colour gradient plus a soft sun glow."""
    top = rng.uniform((20, 40, 90), (120, 160, 230)).astype(np.float32)
    low = rng.uniform((170, 120, 90), (255, 220, 190)).astype(np.float32)
    t = yy ** np.float32(rng.uniform(0.6, 1.4))
    column = top * (1 - t[..., None]) + low * t[..., None]
    img = np.broadcast_to(column, (yy.shape[0], xx.shape[1], 3)).copy()
    sx, sy, r = rng.uniform(0.1, 0.9), rng.uniform(0.15, 0.5), rng.uniform(0.05, 0.15)
    glow = np.exp(-((xx - sx) ** 2) / r**2) * np.exp(-((yy - sy) ** 2) / r**2)
    img += glow[..., None] * rng.uniform((120, 90, 40), (200, 170, 110)).astype(np.float32)
    return img


def _hills(rng: np.random.Generator, img: np.ndarray, yy: np.ndarray, xx: np.ndarray,
           horizon: float) -> np.ndarray:
    """Three ridge layers, paler with distance, each shaded top to bottom."""
    x = xx[0]
    for layer in range(3):
        profile = np.full_like(x, horizon + layer * 0.09)
        for _ in range(4):
            profile += np.float32(rng.uniform(0.005, 0.04)) * np.sin(
                x * np.float32(rng.uniform(2, 14)) + np.float32(rng.uniform(0, 6.3)))
        mask = yy >= profile[None, :]
        colour = rng.uniform((30, 60, 30), (110, 140, 90)).astype(np.float32) * (1.25 - 0.25 * layer)
        shade = (1.0 - 0.35 * np.clip((yy - horizon) * 2, 0, 1))[..., None]
        img = np.where(mask[..., None], colour * shade, img)
    return img


def _skyline(rng: np.random.Generator, img: np.ndarray, horizon: float) -> np.ndarray:
    """Buildings of random width and height with a scatter of lit windows."""
    height, width = img.shape[:2]
    x = 0
    while x < width:
        w = int(rng.integers(width // 30, width // 9))
        top = int(height * (horizon - rng.uniform(0.0, 0.35)))
        grey = rng.uniform(25, 80)
        img[top:, x:x + w] = (grey, grey * 1.05, grey * 1.2)
        lit = rng.random((max(1, (height - top) // 8), max(1, w // 6))) < 0.25
        for r, c in zip(*np.nonzero(lit), strict=True):
            y0, x0 = top + 3 + r * 8, x + 2 + c * 6
            img[y0:y0 + 4, x0:x0 + 3] = (235, 205, 120)
        x += w + int(rng.integers(0, width // 60 + 1))
    img[int(height * 0.92):] *= np.float32(0.7)
    return img


def _blobs(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Soft translucent ellipses (clouds, foliage, bokeh), blended only inside their 3-sigma box."""
    height, width = img.shape[:2]
    for _ in range(int(rng.integers(6, 14))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.03, 0.2) * width, rng.uniform(0.02, 0.12) * height
        x0, x1 = max(0, int(cx - 3 * rx)), min(width, int(cx + 3 * rx) + 1)
        y0, y1 = max(0, int(cy - 3 * ry)), min(height, int(cy + 3 * ry) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        gx = np.exp(-(((np.arange(x0, x1, dtype=np.float32) - cx) / rx) ** 2))
        gy = np.exp(-(((np.arange(y0, y1, dtype=np.float32) - cy) / ry) ** 2))
        alpha = (np.outer(gy, gx) * np.float32(rng.uniform(0.15, 0.5)))[..., None]
        colour = rng.uniform(20, 250, 3).astype(np.float32)
        box = img[y0:y1, x0:x1]
        img[y0:y1, x0:x1] = box * (1 - alpha) + colour * alpha
    return img


def _render_video(post: _Post, seed: int, index: int, files: dict[str, bytes]) -> None:
    """A 3 s panning clip (video_file), a 2 s loop (animation), or a too-large placeholder."""
    if post.kind == "video_skip":
        post.media = {"file": _TOO_BIG, "file_name": "kestrel_ridge_timelapse_4k.mp4",
                      "file_size": 187_654_321, "media_type": "video_file", "mime_type": "video/mp4",
                      "duration_seconds": 94, "width": 3840, "height": 2160}
        return
    animated = post.kind == "animation"
    name = "city_lights.gif.mp4" if animated else f"clip_{index}.mp4"
    size, fps, seconds = ((240, 240), 10, 2) if animated else ((320, 240), 12, 3)
    frames = list(_loop_frames(seed, size, fps * seconds) if animated
                  else _pan_frames(seed, index, size, fps * seconds))
    data = _encode_mp4(frames, fps)
    thumb = _jpeg(Image.fromarray(frames[0]), 80)
    path = f"video_files/{name}"
    files[path], files[path + "_thumb.jpg"] = data, thumb
    post.media = {"file": path, "file_name": name, "file_size": len(data),
                  "thumbnail": path + "_thumb.jpg", "thumbnail_file_size": len(thumb),
                  "media_type": "animation" if animated else "video_file", "mime_type": "video/mp4",
                  "duration_seconds": seconds, "width": size[0], "height": size[1]}


def _pan_frames(seed: int, index: int, size: tuple[int, int], count: int) -> Iterator[np.ndarray]:
    """Pan across a wide procedural scene while a bird-like dot crosses the sky."""
    width, height = size
    pano = np.asarray(_scene(seed, 10_000 + index, width + count * 3, height))
    for i in range(count):
        frame = pano[:, i * 3:i * 3 + width].copy()
        bx, by = 20 + i * 7, 40 + int(10 * np.sin(i / 3))
        frame[by:by + 4, bx % width:bx % width + 9] = (25, 25, 30)
        yield frame


def _loop_frames(seed: int, size: tuple[int, int], count: int) -> Iterator[np.ndarray]:
    """Twinkling city lights: dots whose brightness cycles over the loop."""
    width, height = size
    rng = np.random.default_rng([seed, 20_000])
    pts = rng.integers(0, (width, height), (40, 2))
    phase = rng.uniform(0, 2 * np.pi, 40)
    base = np.asarray(_scene(seed, 20_001, width, height)) // 3
    for i in range(count):
        img = Image.fromarray(base.copy())
        draw = ImageDraw.Draw(img)
        for (x, y), ph in zip(pts, phase, strict=True):
            level = int(140 + 110 * np.sin(2 * np.pi * i / count + ph))
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=(level, level * 4 // 5, 90))
        yield np.asarray(img)


def _encode_mp4(frames: list[np.ndarray], fps: int) -> bytes:
    """MPEG-4 Part 2 (or x264) in MP4, bit-exact flags so reruns give identical bytes."""
    codec = "mpeg4" if "mpeg4" in av.codecs_available else "libx264"
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt, stream.bit_rate = "yuv420p", 350_000
        stream.codec_context.options = {"flags": "+bitexact"}
        stream.codec_context.thread_count = 1
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return buf.getvalue()


def _render_sticker(post: _Post, seed: int, files: dict[str, bytes]) -> None:
    """A 512x512 transparent WebP sticker; the second one gets tdesktop's ' (1)' name suffix."""
    first = "stickers/sticker.webp" not in files
    path = "stickers/sticker.webp" if first else "stickers/sticker (1).webp"
    img = _sticker_image(seed, 0 if first else 1)
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=80, method=4)
    thumb = _jpeg(img.resize((128, 128), Image.Resampling.LANCZOS), 80)
    files[path], files[path + "_thumb.jpg"] = buf.getvalue(), thumb
    post.media = {"file": path, "file_name": "sticker.webp", "file_size": len(buf.getvalue()),
                  "thumbnail": path + "_thumb.jpg", "thumbnail_file_size": len(thumb),
                  "media_type": "sticker", "sticker_emoji": "📷" if first else "🌅",
                  "mime_type": "image/webp", "width": 512, "height": 512}


def _sticker_image(seed: int, which: int) -> Image.Image:
    """A camera or a setting sun, drawn with outlines on transparency."""
    rng = random.Random(f"{seed}:sticker:{which}")
    img = Image.new("RGBA", (512, 512), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    hue = (rng.randint(40, 220), rng.randint(40, 220), rng.randint(40, 220), 255)
    if which == 0:
        draw.rounded_rectangle((56, 150, 456, 420), 40, fill=hue, outline=(20, 20, 20, 255), width=10)
        draw.rectangle((180, 100, 330, 160), fill=hue, outline=(20, 20, 20, 255), width=10)
        draw.ellipse((166, 196, 346, 376), fill=(235, 240, 250, 255), outline=(20, 20, 20, 255), width=12)
        draw.ellipse((216, 246, 296, 326), fill=(40, 60, 90, 255))
    else:
        for r in range(200, 0, -20):
            draw.ellipse((256 - r, 300 - r, 256 + r, 300 + r), fill=(255, 120 + r // 2, 60, 255))
        draw.rectangle((40, 300, 472, 420), fill=(30, 70, 120, 255))
    return img


def _render_document(post: _Post, files: dict[str, bytes]) -> None:
    """Plain documents under files/: a text note and a one-page PDF flyer."""
    if post.kind == "txt":
        name, mime = "route_notes.txt", "text/plain"
        data = (b"Saturday photo walk\n\n08:00 meet at Linden Square\n09:30 Mill Street bridge\n"
                b"11:00 coffee at the Old Harbour\n")
    else:
        name, mime = "autumn_walks_flyer.pdf", "application/pdf"
        data = _tiny_pdf("Autumn photo walks - every Saturday 8:00")
    files[f"files/{name}"] = data
    post.media = {"file": f"files/{name}", "file_name": name, "file_size": len(data), "mime_type": mime}


def _tiny_pdf(line: str) -> bytes:
    """A valid one-page PDF with correct xref offsets, built by hand (no PDF library needed)."""
    content = f"BT /F1 16 Tf 24 80 Td ({line}) Tj ET".encode("latin-1")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 420 160] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# --- output -----------------------------------------------------------------------------------


def _write_if_changed(path: pathlib.Path, data: bytes) -> bool:
    """Atomically replace `path` with `data` unless it already holds exactly these bytes."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return True
