"""Hash robustness harness: benign generated photos, the edits reposters make, and recall at a threshold.

Shared by tests/test_hash_quality.py and bench/bench_recall.py so the test and the published table
measure the same thing. "Ours" is the production path (`hash_media`, reduced JPEG decode); the
"reference" is what a careful user would write by hand: a full PIL decode fed to pdqhash and imagehash.
Everything is generated in memory from seeds; nothing real is read or written.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import av
import imagehash
import numpy as np
import pdqhash
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from processing.hashing import hash_media
from processing.hashing.images import decode_for_hashing, open_image
from processing.hashing.limits import DecodeLimits
from processing.hashing.pdq import pdq_dihedral

SIZE = (1280, 960)
ORIGINAL_QUALITY = 92  # how the "known" originals are stored
EDIT_QUALITY = 90  # re-save quality for edits that are not about compression
SIGNALS = ("pdq", "pdq_dihedral", "phash", "dhash")
DEFAULT_THRESHOLDS: dict[str, int] = {"pdq": 31, "pdq_quality": 50, "phash": 8, "dhash": 8}


# --- benign natural-looking images ----------------------------------------------------------------------------


def _upscaled(rng: np.random.Generator, cells: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Gaussian noise on a coarse grid, smoothly upscaled: one octave of value noise."""
    grid = rng.standard_normal((cells[1], cells[0])).astype(np.float32)
    return np.asarray(Image.fromarray(grid, "F").resize(size, Image.Resampling.BICUBIC))


def fractal_noise(rng: np.random.Generator, size: tuple[int, int], octaves: int = 8,
                  persistence: float = 0.6) -> np.ndarray:
    """Multi-scale "cloud" noise in [0, 1]: large soft structure with finer detail on top."""
    width, height = size
    total = np.zeros((height, width), dtype=np.float32)
    for octave in range(octaves):
        cells = (2 + int(width / 320 * 2 ** octave), 2 + int(height / 320 * 2 ** octave))
        total += persistence ** octave * _upscaled(rng, cells, size)
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


def _palette(rng: np.random.Generator) -> np.ndarray:
    """A 256-entry colour ramp through 3-5 random colours (sky, foliage, earth, ...)."""
    stops = rng.integers(0, 256, size=(int(rng.integers(3, 6)), 3)).astype(np.float32)
    positions = np.linspace(0, 255, len(stops))
    ramp = np.arange(256, dtype=np.float32)
    return np.stack([np.interp(ramp, positions, stops[:, c]) for c in range(3)], axis=1)


def _soft_shapes(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """Blurred ellipses and polygons on a transparent layer: objects without hard edges.

    Drawn and blurred at quarter size, then upscaled: the edges are soft anyway, and it is 16x cheaper.
    """
    width, height = size[0] // 4, size[1] // 4
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(4, 10))):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.03, 0.2) * width, rng.uniform(0.03, 0.2) * height
        colour = (*(int(v) for v in rng.integers(0, 256, 3)), int(rng.integers(90, 220)))
        if rng.random() < 0.6:
            draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=colour)
        else:
            angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
            draw.polygon([(x + rx * np.cos(a), y + ry * np.sin(a)) for a in angles], fill=colour)
    blurred = layer.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.6, 3))))
    return blurred.resize(size, Image.Resampling.BICUBIC)


def _texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Waves (water, sand, fabric) with random direction and frequency, in [-1, 1]."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(5, 30)
    phase = 6.0 * _upscaled(rng, (4, 3), size)
    return np.sin((x * np.cos(angle) + y * np.sin(angle)) * np.float32(2 * np.pi / period) + phase)


def _base_layer(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Clouds mapped through a palette, a light gradient, uneven lighting and patches of texture."""
    height = size[1]
    clouds = fractal_noise(rng, size, persistence=float(rng.uniform(0.5, 0.7)))
    light = np.linspace(rng.uniform(-0.25, 0.25), rng.uniform(-0.25, 0.25), height, dtype=np.float32)[:, None]
    pixels = _palette(rng)[(np.clip(clouds + light, 0, 1) * 255).astype(np.uint8)]
    pixels *= (0.75 + 0.5 * fractal_noise(rng, size, octaves=4))[..., None]
    mask = fractal_noise(rng, size, octaves=3) > rng.uniform(0.45, 0.7)
    pixels[mask] += (rng.uniform(8, 25) * _texture(rng, size))[mask][:, None]
    return pixels


def natural_image(rng: np.random.Generator, size: tuple[int, int] = SIZE) -> Image.Image:
    """One benign, photo-like picture. Composed at half size and upscaled (fast), then grain at full size."""
    base = _base_layer(rng, (size[0] // 2, size[1] // 2))
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB").resize(size, Image.Resampling.BICUBIC)
    image = Image.alpha_composite(image.convert("RGBA"), _soft_shapes(rng, size)).convert("RGB")
    grain = rng.integers(-4, 5, (size[1], size[0], 3), dtype=np.int16)  # sensor noise
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.int16) + grain, 0, 255).astype(np.uint8), "RGB")


def natural_images(n: int, seed: int = 0, size: tuple[int, int] = SIZE) -> list[Image.Image]:
    """`n` distinct benign pictures, reproducible from `seed`."""
    return [natural_image(np.random.default_rng([seed, index]), size) for index in range(n)]


# --- the edits a reposter makes -------------------------------------------------------------------------------


def jpeg_bytes(image: Image.Image, quality: int = EDIT_QUALITY) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _resize_50(image: Image.Image) -> bytes:
    return jpeg_bytes(image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS))


def _telegram_640(image: Image.Image) -> bytes:
    """Telegram-style re-encode: longest side 640, JPEG quality 80."""
    scale = 640 / max(image.size)
    size = (round(image.width * scale), round(image.height * scale))
    return jpeg_bytes(image.resize(size, Image.Resampling.LANCZOS), quality=80)


def _watermark_text(image: Image.Image) -> bytes:
    """'@reposter' drawn five times across the picture, semi-opaque white with a dark outline."""
    marked = image.convert("RGBA")
    layer = Image.new("RGBA", marked.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = ImageFont.load_default(size=max(16, image.height // 16))
    for row in range(5):
        x = image.width * (0.05 + 0.12 * row)
        y = image.height * (0.08 + 0.19 * row)
        draw.text((x, y), "@reposter", font=font, fill=(255, 255, 255, 190), stroke_width=2,
                  stroke_fill=(0, 0, 0, 160))
    return jpeg_bytes(Image.alpha_composite(marked, layer))


def _crop_5(image: Image.Image) -> bytes:
    """5% cut off every edge; the smaller picture is kept as it is (not resized back)."""
    dx, dy = round(image.width * 0.05), round(image.height * 0.05)
    return jpeg_bytes(image.crop((dx, dy, image.width - dx, image.height - dy)))


TRANSFORMS: dict[str, Callable[[Image.Image], bytes]] = {
    "jpeg_q50": lambda image: jpeg_bytes(image, quality=50),
    "resize_50": _resize_50,
    "telegram_640": _telegram_640,
    "gaussian_blur": lambda image: jpeg_bytes(image.filter(ImageFilter.GaussianBlur(2))),
    "watermark_text": _watermark_text,
    "crop_5": _crop_5,
    "rotate_4": lambda image: jpeg_bytes(image.rotate(4, Image.Resampling.BILINEAR, expand=False)),
    "flip_h": lambda image: jpeg_bytes(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
}


# --- hashing, ours and the naive reference --------------------------------------------------------------------


@dataclass(frozen=True)
class Signals:
    """The hashes one side computes for one file. `dihedral` holds the 8 PDQ variants of the same decode."""

    pdq: str
    quality: int
    phash: str
    dhash: str
    dihedral: tuple[str, ...] = ()


HashFn = Callable[[bytes], Signals]


def hamming(a: str, b: str) -> int:
    """Bits that differ between two hex hashes of the same length."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def pdqhash_hex(bits: np.ndarray) -> str:
    """pdqhash's 256 bits (most significant first) as the 64 hex digits hash lists use."""
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def _reference_dihedral(rgb: np.ndarray) -> tuple[tuple[str, ...], int]:
    hashes, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return tuple(pdqhash_hex(bits) for bits in hashes), int(quality)


def ours_signals(data: bytes, limits: DecodeLimits | None = None) -> Signals:
    """Production hashes (`hash_media`, reduced decode), plus dihedral PDQ from the same reduced decode."""
    limits = limits or DecodeLimits()
    hashed = hash_media(data, limits, reduce=True)
    if hashed.status != "hashed" or hashed.pdq is None:
        raise AssertionError(f"hash_media did not hash a generated JPEG: {hashed.status} {hashed.reason}")
    image = open_image(data, limits)
    full_size = image.size  # before decode_for_hashing's draft() shrinks it
    dihedral, _ = pdq_dihedral(np.asarray(decode_for_hashing(image, limits, reduce=True)), full_size)
    return Signals(hashed.pdq, int(hashed.pdq_quality or 0), str(hashed.phash), str(hashed.dhash),
                   tuple(dihedral.values()))


def reference_signals(data: bytes) -> Signals:
    """The naive baseline: full PIL decode, pdqhash on its RGB, imagehash on the full image."""
    image = Image.open(io.BytesIO(data))
    image.load()
    dihedral, quality = _reference_dihedral(np.asarray(image.convert("RGB")))  # dihedral[0] is the plain PDQ
    return Signals(dihedral[0], quality, str(imagehash.phash(image)), str(imagehash.dhash(image)), dihedral)


# --- recall and false positives -------------------------------------------------------------------------------


@dataclass
class RecallTable:
    """recall[column][transform] in percent, with columns like "pdq_ours" or "phash_ref"; the median
    distance of the same pairs (recall saturates, distances show the margin); false positives per
    column, over `fp_pairs` ordered (query, other image's original) pairs."""

    images: int
    recall: dict[str, dict[str, float]] = field(default_factory=dict)
    median_distance: dict[str, dict[str, float]] = field(default_factory=dict)
    false_positives: dict[str, int] = field(default_factory=dict)
    fp_pairs: int = 0


def _bits(hexes: Sequence[str]) -> np.ndarray:
    """Hex hashes as rows of 0/1 float32, so Hamming distances are one matrix product."""
    raw = np.frombuffer(bytes.fromhex("".join(hexes)), dtype=np.uint8).reshape(len(hexes), -1)
    return np.unpackbits(raw, axis=1).astype(np.float32)


def hamming_matrix(queries: Sequence[str], targets: Sequence[str]) -> np.ndarray:
    """Distances between every query and every target hash (equal-length hex strings)."""
    q, t = _bits(queries), _bits(targets)
    return np.rint(q.sum(1)[:, None] + t.sum(1)[None, :] - 2 * q @ t.T).astype(np.int32)


def _distances(signal: str, queries: list[Signals], targets: list[Signals]) -> np.ndarray:
    """distance[i, j] of query i to target j; for pdq_dihedral, the closest of the query's 8 variants."""
    if signal == "pdq_dihedral":
        variants = [hamming_matrix([q.dihedral[k] for q in queries], [t.pdq for t in targets]) for k in range(8)]
        return np.min(variants, axis=0)
    return hamming_matrix([getattr(q, signal) for q in queries], [getattr(t, signal) for t in targets])


def _quality_ok(queries: list[Signals], targets: list[Signals], floor: int) -> np.ndarray:
    """PDQ's rule: a pair only counts when both hashes have quality >= floor."""
    good_query = np.array([q.quality for q in queries]) >= floor
    good_target = np.array([t.quality for t in targets]) >= floor
    return good_query[:, None] & good_target[None, :]


def _within(signal: str, distance: np.ndarray, queries: list[Signals], targets: list[Signals],
            thresholds: Mapping[str, int]) -> np.ndarray:
    """Which (query, target) pairs match under the default rules for this signal."""
    close = distance <= thresholds["pdq" if signal.startswith("pdq") else signal]
    if signal.startswith("pdq"):
        close &= _quality_ok(queries, targets, thresholds["pdq_quality"])
    return close


def edited_files(originals: Sequence[Image.Image]) -> dict[str, list[bytes]]:
    """The stored originals (JPEG q92) and every transform of their decoded pixels, as JPEG bytes."""
    stored = [jpeg_bytes(image, ORIGINAL_QUALITY) for image in originals]
    decoded = [Image.open(io.BytesIO(data)).convert("RGB") for data in stored]
    files = {"original": stored}
    files.update({name: [transform(image) for image in decoded] for name, transform in TRANSFORMS.items()})
    return files


def hash_files(files: Mapping[str, list[bytes]], fn: HashFn, workers: int = 1) -> dict[str, list[Signals]]:
    """Hash every file of every edit with one side's function, in one process pool when `workers` > 1."""
    flat = [data for batch in files.values() for data in batch]
    if workers <= 1:
        hashed = [fn(data) for data in flat]
    else:
        with ProcessPoolExecutor(workers) as pool:
            hashed = list(pool.map(fn, flat, chunksize=4))
    result, start = {}, 0
    for name, batch in files.items():
        result[name], start = hashed[start:start + len(batch)], start + len(batch)
    return result


def score_side(table: RecallTable, side: str, hashed: Mapping[str, list[Signals]],
               thresholds: Mapping[str, int] = DEFAULT_THRESHOLDS) -> None:
    """Fill the `{signal}_{side}` columns of `table` from one side's hashes (the "original" list is the index)."""
    targets = hashed["original"]
    off_diagonal = ~np.eye(len(targets), dtype=bool)
    table.fp_pairs = len(hashed) * len(targets) * (len(targets) - 1)
    for signal in SIGNALS:
        column = f"{signal}_{side}"
        table.recall[column], table.median_distance[column] = {}, {}
        table.false_positives[column] = 0
        for name, queries in hashed.items():
            distance = _distances(signal, queries, targets)
            close = _within(signal, distance, queries, targets, thresholds)
            if name != "original":
                table.recall[column][name] = 100.0 * float(np.diag(close).mean())
                table.median_distance[column][name] = float(np.median(np.diag(distance)))
            table.false_positives[column] += int(close[off_diagonal].sum())


def recall_table(originals: Sequence[Image.Image], hash_fn_ours: HashFn = ours_signals,
                 hash_fn_ref: HashFn = reference_signals, thresholds: Mapping[str, int] = DEFAULT_THRESHOLDS,
                 *, workers: int = 1) -> RecallTable:
    """Recall per transform and false positives between distinct images, for both sides.

    Recall is the share of (original, its transform) pairs that match. False positives count ordered
    pairs (original or any transform of image i, original of image j != i) that match. `hash_fn_*` must
    be picklable (module-level, or a partial of one) when `workers` > 1.
    """
    files = edited_files(originals)
    table = RecallTable(images=len(originals))
    for side, fn in (("ours", hash_fn_ours), ("ref", hash_fn_ref)):
        score_side(table, side, hash_files(files, fn, workers), thresholds)
    return table


# --- benign generated video -----------------------------------------------------------------------------------


def _video_codec() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _encode_frames(frames: Sequence[np.ndarray], fps: int, bitrate: int) -> bytes:
    """RGB frames to an in-memory MP4 (H.264 when this PyAV build has it, else MPEG-4 Part 2)."""
    out = io.BytesIO()
    height, width = frames[0].shape[:2]
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream(_video_codec(), rate=fps)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = width, height, "yuv420p", bitrate
        if stream.codec_context.name == "libx264":
            stream.options = {"preset": "ultrafast"}
        for pixels in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    return out.getvalue()


def _scene_frame(backdrop: Image.Image, index: int, frames: int, size: tuple[int, int],
                 sprites: list[tuple[tuple[int, int, int], float, float, float, float]]) -> np.ndarray:
    """The camera pans across the backdrop while coloured discs drift across the view."""
    width, height = size
    t = index / max(frames - 1, 1)
    left = round(t * (backdrop.width - width))
    top = round((0.5 - 0.5 * np.cos(np.pi * t)) * (backdrop.height - height))
    view = backdrop.crop((left, top, left + width, top + height))
    draw = ImageDraw.Draw(view)
    radius = height // 8
    for colour, x0, y0, vx, vy in sprites:
        x = (x0 + vx * t) % 1.0 * width
        y = (y0 + vy * t) % 1.0 * height
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return np.asarray(view)


def synthetic_video(seed: int, size: tuple[int, int] = (320, 240), seconds: int = 6, fps: int = 10,
                    bitrate: int = 1_000_000) -> bytes:
    """A benign clip: a pan over a generated landscape with a few moving discs, as MP4 bytes."""
    rng = np.random.default_rng([seed, 7])
    backdrop = natural_image(rng, (size[0] * 2, size[1] * 2))
    sprites = [(tuple(int(v) for v in rng.integers(0, 256, 3)), *rng.uniform(0, 1, 2), *rng.uniform(-1.5, 1.5, 2))
               for _ in range(3)]
    frames = seconds * fps
    return _encode_frames([_scene_frame(backdrop, i, frames, size, sprites) for i in range(frames)], fps, bitrate)


def reencode_video(data: bytes, size: tuple[int, int], bitrate: int) -> bytes:
    """Decode and encode again at another size and bitrate, as a reposting platform would."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        fps = int(stream.average_rate or 10)
        frames = [frame.reformat(size[0], size[1], "rgb24").to_ndarray() for frame in container.decode(stream)]
    return _encode_frames(frames, fps, bitrate)
