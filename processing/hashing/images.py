"""Perceptual hashes of still images, from one decode, in memory.

PDQ (with its quality), pHash and dHash all come from a single decoded image. Large JPEGs are
decoded at half size through libjpeg's DCT scaling (`draft`), which is most of the speed-up over a
naive full decode; only their luma is decoded, since all three hashes hash luma. PDQ of a reduced
decode is computed with the full-size image's filter (processing/hashing/pdq.py), so it stays about as
close to Meta's reference as a full decode; the recall table in docs/benchmarks.md shows what the
reduction costs. The pixel count is checked from the header before anything is decoded, so a
decompression bomb is refused cheaply.
"""

from __future__ import annotations

import io
import math
import struct
import time
import warnings
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from processing.hashing.limits import DecodeLimits
from processing.hashing.pdq import pdq_of
from processing.hashing.rejection import MediaRejected

try:  # HEIC/HEIF photos (iPhone); optional, a well-kept libheif binding
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - the pinned environment has it
    pass

Image.MAX_IMAGE_PIXELS = None  # our own limit (DecodeLimits.max_image_pixels) applies, with a clear reason


@dataclass(frozen=True)
class ImageHashes:
    pdq: str
    pdq_quality: int
    phash: str
    dhash: str
    width: int
    height: int
    decoded_width: int
    decoded_height: int
    image_format: str
    animated: bool = False


def open_image(data: bytes, limits: DecodeLimits) -> Image.Image:
    """Open (header only) and refuse what is not an image or too large to decode."""
    if not data:
        raise MediaRejected("failed", "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise MediaRejected("failed", "not a recognised image format") from None
    except ValueError as exc:
        if "too large" in str(exc):  # Pillow's MAX_TEXT_CHUNK on zTXt/iCCP: a bomb outside the pixels
            raise MediaRejected("skipped", f"decompression bomb: {exc}") from None
        raise MediaRejected("failed", f"cannot read image header: {exc}") from None
    except (OSError, SyntaxError) as exc:
        raise MediaRejected("failed", f"cannot read image header: {exc}") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        raise MediaRejected("failed", f"invalid image size {width}x{height}")
    if width * height > limits.max_image_pixels:
        raise MediaRejected("skipped", f"decompression bomb: {width}x{height} = {width * height:,} pixels is over "
                                       f"the limit of {limits.max_image_pixels:,}")
    return image


# Above this many decoded pixels an image is box-filtered down before hashing: PDQ, pHash and dHash
# all reduce it to 64x64 or less anyway, and hashing 90 Mpx at full size would take seconds and GBs.
HASH_MAX_PIXELS = 4_000_000


def decode_for_hashing(image: Image.Image, limits: DecodeLimits, reduce: bool) -> Image.Image:
    """Decode once: an RGB image, or for a large colour JPEG only its luma (Y), at half size.

    PDQ, pHash and dHash all hash luma, and a JPEG stores it as its own channel (Y of YCbCr, the
    same 0.299/0.587/0.114 weights), so the fast path asks libjpeg for Y alone at half scale and
    skips the chroma planes and the colour conversion. Other images and `reduce=False` decode to
    RGB, as a naive hasher does.
    """
    width, height = image.size
    luma_only = reduce and image.format == "JPEG" and min(width, height) >= limits.reduce_min_side
    if luma_only:
        image.draft("L", (width // 2, height // 2))  # Y alone for YCbCr JPEGs; others keep their mode
    try:
        image.load()
        keep = ("RGB", "L") if luma_only else ("RGB",)
        decoded = image if image.mode in keep else image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MediaRejected("failed", f"cannot decode image: {exc}") from None
    pixels = decoded.width * decoded.height
    if pixels > HASH_MAX_PIXELS:
        factor = math.ceil(math.sqrt(pixels / HASH_MAX_PIXELS))
        decoded = decoded.reduce(factor)
    return decoded


def _dct_matrix(size: int) -> np.ndarray:
    """The unnormalised DCT-II as a matrix: C @ x equals scipy.fftpack.dct(x, type=2, axis=0)."""
    n = np.arange(size)
    return 2.0 * np.cos(np.pi * np.outer(n, 2 * n + 1) / (2 * size))


_DCT32 = _dct_matrix(32)


def phash_hex(gray: Image.Image) -> str:
    """imagehash.phash (hash_size 8), with the DCT as a matrix product.

    Same steps as imagehash: 32x32 LANCZOS resize of the luma image, 2-D DCT-II, the top-left 8x8
    block compared with its median. imagehash calls scipy's fftpack for the DCT, and importing scipy
    costs about half a second per process; a test checks that the hashes agree bit for bit.
    """
    pixels = np.asarray(gray.resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = (_DCT32 @ pixels @ _DCT32.T)[:8, :8]
    return str(imagehash.ImageHash(low > np.median(low)))


def hashes_of_image(decoded: Image.Image, full_size: tuple[int, int] | None = None) -> tuple[str, int, str, str]:
    """(pdq, quality, phash, dhash) of a decoded RGB or luma image; `full_size` as for `pdq_of`."""
    pdq_hash, quality = pdq_of(np.asarray(decoded), full_size)
    gray = decoded if decoded.mode == "L" else decoded.convert("L")
    return pdq_hash, quality, phash_hex(gray), str(imagehash.dhash(gray))


def hash_image(data: bytes, limits: DecodeLimits | None = None, *, reduce: bool = True) -> ImageHashes:
    """Hash a still image (the first frame of an animation). Raises MediaRejected with a reason."""
    limits = limits or DecodeLimits()
    image = open_image(data, limits)
    width, height = image.size
    image_format = image.format or "unknown"
    animated = bool(getattr(image, "is_animated", False))
    decoded = decode_for_hashing(image, limits, reduce)
    pdq_hash, quality, phash, dhash = hashes_of_image(decoded, (width, height))
    return ImageHashes(pdq_hash, quality, phash, dhash, width, height, decoded.width, decoded.height, image_format,
                       animated)


def animation_frames(data: bytes, limits: DecodeLimits) -> tuple[list[dict], float, int]:
    """vPDQ-style frames of an animated GIF/WebP/PNG: one PDQ per second of animation time.

    Returns (frames as {ts, pdq, quality}, duration in seconds, frames decoded).
    """
    started = time.monotonic()
    image = open_image(data, limits)
    frames: list[dict] = []
    clock = 0.0
    next_sample = 0.0
    decoded = 0
    step = 1.0 / limits.video_fps
    try:
        for frame in ImageSequence.Iterator(image):
            _check_frame_size(frame, limits)
            decoded += 1
            if clock >= next_sample:
                pdq, quality = pdq_of(np.asarray(frame.convert("RGB")))
                frames.append({"ts": round(clock, 3), "pdq": pdq, "quality": quality})
                next_sample += step
            clock += max(int(frame.info.get("duration", 100) or 100), 10) / 1000.0
            if clock > limits.max_video_seconds:
                break
            budget = limits.max_decode_seconds + clock * limits.decode_seconds_per_video_second
            if time.monotonic() - started > budget:
                raise MediaRejected("failed", f"decoding took longer than {budget:.3g} s for {clock:.3g} s of "
                                              "animation (max_decode_seconds)")
    except (OSError, ValueError, EOFError, IndexError, SyntaxError, struct.error) as exc:  # Pillow on cut frames
        if not frames:
            raise MediaRejected("failed", f"cannot decode animation: {exc}") from None
    return frames, round(clock, 3), decoded


def _check_frame_size(frame: Image.Image, limits: DecodeLimits) -> None:
    """A GIF frame may grow the canvas past the header's size: check each frame before it is decoded."""
    width, height = frame.size
    if width * height > limits.max_image_pixels:
        raise MediaRejected("skipped", f"decompression bomb: animation frame {width}x{height} = {width * height:,} "
                                       f"pixels is over the limit of {limits.max_image_pixels:,}")
