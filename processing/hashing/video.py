"""vPDQ for videos, decoded from memory with PyAV: one PDQ (with quality) per second of video.

Follows vPDQ's rules: frames sampled at one per second, each with its timestamp and PDQ quality;
matching (frame quality >= 50, distance <= 31, share of matching frames) lives in `vpdq.py`.
The frame size is checked from the stream header before decoding, and decoding has a time budget.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import av
import numpy as np

from processing.hashing import NO_VIDEO_STREAM
from processing.hashing.limits import DecodeLimits
from processing.hashing.pdq import pdq_of
from processing.hashing.rejection import MediaRejected


@dataclass(frozen=True)
class VideoHashes:
    frames: list[dict]
    duration_s: float | None
    frames_decoded: int
    width: int
    height: int
    codec: str
    truncated_at_s: float | None = None


def _open(data: bytes) -> av.container.InputContainer:
    if not data:
        raise MediaRejected("failed", "empty file")
    try:
        return av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise MediaRejected("failed", f"not a recognised video: {exc.strerror or exc}") from None


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


# Frames above this many pixels are scaled down before PDQ (which reduces them to 64x64 anyway), so an
# 8K frame costs a few MB instead of hundreds.
PDQ_MAX_FRAME_PIXELS = 2_000_000


def _frame_rgb(frame: av.VideoFrame) -> np.ndarray:
    pixels = frame.width * frame.height
    if pixels <= PDQ_MAX_FRAME_PIXELS:
        return frame.to_ndarray(format="rgb24")
    scale = (PDQ_MAX_FRAME_PIXELS / pixels) ** 0.5
    width, height = max(2, int(frame.width * scale) // 2 * 2), max(2, int(frame.height * scale) // 2 * 2)
    return frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()


def decode_budget(limits: DecodeLimits, video_seconds: float) -> float:
    """Seconds a decode may take by the time it has reached `video_seconds` of footage."""
    return limits.max_decode_seconds + video_seconds * limits.decode_seconds_per_video_second


def hash_video(data: bytes, limits: DecodeLimits | None = None) -> VideoHashes:
    """Hash a video held in memory. Raises MediaRejected with a reason for bombs and broken files."""
    limits = limits or DecodeLimits()
    started = time.monotonic()
    container = _open(data)
    try:
        if not container.streams.video:
            raise MediaRejected("failed", NO_VIDEO_STREAM)
        stream = container.streams.video[0]
        if stream.codec_context is None:  # PyAV has no decoder for the stream's codec id
            raise MediaRejected("failed", "no decoder for the video stream's codec")
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > limits.max_video_frame_pixels:
            raise MediaRejected("skipped", f"video frame {width}x{height} is over the limit of "
                                           f"{limits.max_video_frame_pixels:,} pixels")
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = 2  # frame threads each hold frames: bound memory, not only time
        frames: list[dict] = []
        decoded = 0
        step = 1.0 / limits.video_fps
        next_sample = 0.0
        truncated_at = None
        last_ts = 0.0
        try:
            for frame in container.decode(stream):
                decoded += 1
                ts = float(frame.time) if frame.time is not None else decoded / 30.0
                last_ts = max(last_ts, ts)
                if ts > limits.max_video_seconds:
                    truncated_at = limits.max_video_seconds
                    break
                if ts + 1e-6 >= next_sample:
                    if frame.width * frame.height > limits.max_video_frame_pixels:
                        raise MediaRejected("skipped", f"video frame {frame.width}x{frame.height} is over the limit")
                    pdq, quality = pdq_of(_frame_rgb(frame))
                    frames.append({"ts": round(ts, 3), "pdq": pdq, "quality": quality})
                    while next_sample <= ts + 1e-6:
                        next_sample += step
                if time.monotonic() - started > decode_budget(limits, last_ts):
                    raise MediaRejected("failed", f"decoding took longer than {decode_budget(limits, last_ts):.3g} s "
                                                  f"for {last_ts:.3g} s of video (max_decode_seconds)")
        except av.error.FFmpegError as exc:
            if not frames:
                raise MediaRejected("failed", f"cannot decode video: {exc.strerror or exc}") from None
        if not frames:
            raise MediaRejected("failed", "no decodable video frame")
        duration = _duration(container, stream) or last_ts
        return VideoHashes(frames, round(duration, 3) if duration else None, decoded, width, height,
                           stream.codec_context.name, truncated_at)
    finally:
        container.close()
