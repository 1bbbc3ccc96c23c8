"""Media hashing: pure functions from bytes to hashes. No I/O, nothing written anywhere.

`hash_media` sniffs the content (not the file name), hashes images with PDQ, pHash and dHash from
one decode, animations and videos with per-second PDQ (vPDQ), and every file with MD5 and SHA-256
over its original bytes. A file that cannot or must not be decoded comes back with a status of
`skipped` or `failed` and the reason, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

from processing.hashing.exact import ExactHashes, exact_hashes
from processing.hashing.limits import DecodeLimits
from processing.hashing.rejection import MediaRejected
from processing.hashing.sniff import sniff_kind

# The decoders (Pillow, numpy, PyAV) load on first use, so that importing the settings (which use
# DecodeLimits) stays cheap for commands that never decode media.
NO_VIDEO_STREAM = "no video stream"

__all__ = ["DecodeLimits", "ExactHashes", "MediaHashes", "MediaRejected", "exact_hashes", "hash_media"]


@dataclass
class MediaHashes:
    """Everything the `media` dataset and `chanwatch hash` record about one file."""

    status: str  # hashed, skipped, failed
    reason: str | None
    content_kind: str | None  # image, animation, video (from the bytes)
    md5: str
    sha256: str
    size: int
    pdq: str | None = None
    pdq_quality: int | None = None
    phash: str | None = None
    dhash: str | None = None
    frames: list[dict] | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    frames_decoded: int | None = None


# Media kinds (as the source labels them) that are files, not pictures: exact hashes are all they get.
EXACT_ONLY_KINDS = frozenset({"document", "audio_file", "voice_message"})


def hash_media(data: bytes, limits: DecodeLimits | None = None, *, reduce: bool = True,
               labelled_kind: str | None = None, exact: ExactHashes | None = None) -> MediaHashes:
    """Hash one media file held in memory.

    `labelled_kind` is what the source calls the file (photo, video, document, ...): a document that
    is not a picture is hashed exactly and that is a success; a photo or video that is not one is a
    failure (mislabelled or corrupt). `exact` passes MD5/SHA-256 the caller already computed.
    """
    limits = limits or DecodeLimits()
    exact = exact or exact_hashes(data)
    result = MediaHashes("hashed", None, sniff_kind(data), exact.md5, exact.sha256, exact.size)
    try:
        if result.content_kind == "image":
            _fill_image(result, data, limits, reduce)
        elif result.content_kind == "video":
            _fill_video(result, data, limits)
        elif labelled_kind in EXACT_ONLY_KINDS and data:
            result.reason = "exact hashes only: not an image or video"
        elif labelled_kind == "sticker" and data[:2] == b"\x1f\x8b":  # .tgs: gzipped Lottie vector animation
            result.reason = "exact hashes only: animated vector sticker (Lottie)"
        else:
            raise MediaRejected("failed", "empty file" if not data else "not a recognised image or video format")
    except MediaRejected as rejected:
        if labelled_kind in EXACT_ONLY_KINDS and rejected.reason == NO_VIDEO_STREAM:
            # An audio file or voice message in a video container (Ogg Opus, M4A): not a picture.
            result.content_kind, result.reason = None, "exact hashes only: no video stream"
        else:
            result.status, result.reason = rejected.status, rejected.reason
    except MemoryError:
        result.status, result.reason = "failed", "out of memory while decoding"
    except Exception as exc:  # a decoder's unforeseen error on a hostile file must not stop a batch
        result.status, result.reason = "failed", f"cannot decode: {type(exc).__name__}: {exc}"
    return result


def _fill_image(result: MediaHashes, data: bytes, limits: DecodeLimits, reduce: bool) -> None:
    from processing.hashing.images import animation_frames, hash_image

    image = hash_image(data, limits, reduce=reduce)
    # Frames first: a refused animation must not leave its first frame's hashes on a skipped/failed result.
    animation = animation_frames(data, limits) if image.animated else None
    result.pdq, result.pdq_quality, result.phash, result.dhash = image.pdq, image.pdq_quality, image.phash, image.dhash
    result.width, result.height = image.width, image.height
    if animation is not None:
        result.content_kind = "animation"
        result.frames, result.duration_s, result.frames_decoded = animation


def _fill_video(result: MediaHashes, data: bytes, limits: DecodeLimits) -> None:
    from processing.hashing.video import hash_video

    video = hash_video(data, limits)
    result.frames, result.duration_s, result.frames_decoded = video.frames, video.duration_s, video.frames_decoded
    result.width, result.height = video.width, video.height
    if video.truncated_at_s is not None:
        result.reason = f"hashed the first {video.truncated_at_s:g} s (max_video_seconds)"
