"""Decode limits: what a hostile file may cost before it is refused. Every limit is a setting."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecodeLimits:
    """Defaults keep one worker under about 1 GB and any file under a few seconds."""

    # Images above this many pixels (read from the header, before decoding) are decompression bombs.
    max_image_pixels: int = 90_000_000
    # A video frame above this many pixels is refused (8K UHD is 33 Mpx).
    max_video_frame_pixels: int = 36_000_000
    # Longer videos are hashed on their first `max_video_seconds` only, and say so.
    max_video_seconds: float = 3600.0
    # Wall-clock budget for decoding one file: this much, plus `decode_seconds_per_video_second` for
    # every second of video (or animation) decoded so far. A long, legitimate video keeps going as
    # long as it decodes at least twice as fast as real time; a file whose frames are expensive but
    # whose clock barely moves is failed with a reason after about max_decode_seconds.
    max_decode_seconds: float = 20.0
    decode_seconds_per_video_second: float = 0.5
    # JPEGs whose shorter side is at least this are decoded at 1/2 scale (DCT scaling), luma only;
    # PDQ still applies the full-size filter. docs/benchmarks.md has the recall table that set it.
    reduce_min_side: int = 640
    # Sampling rate for video PDQ, in frames per second (vPDQ's rule is 1).
    video_fps: float = 1.0
