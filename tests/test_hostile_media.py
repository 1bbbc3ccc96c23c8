"""Hostile media: bombs, cut and corrupt files, lies about kind and size. Hashing must never raise.

Every file is generated at run time by `tests.media_factory` (gradients, noise, moving shapes) and
lives only in memory or in pytest's tmp dirs. Each case checks the outcome a reviewer would expect
(hashed, skipped for what is not allowed, failed for what is broken), that the reason is given, that
the exact hashes are always there, and that no file costs more than a few seconds.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from processing.hashing import DecodeLimits, MediaHashes, hash_media
from tests import media_factory as mf

MAX_SECONDS = 5.0  # per file, on a slow 2-core machine
HEADER_SECONDS = 2.0  # a bomb is refused from its header: far below what decoding it would cost
CLI = [sys.executable, "-m", "chanwatch.cli"]
REPO = Path(__file__).resolve().parents[1]

Samples = dict[str, bytes]


@pytest.fixture(scope="module")
def samples() -> Samples:
    """The benign media every case starts from, generated once for the module."""
    return {
        "jpeg": mf.jpeg(), "png": mf.png(), "gif": mf.gif(), "webp": mf.webp(), "bmp": mf.bmp(), "tiff": mf.tiff(),
        "animated_gif": mf.animated_gif(),
        "mp4": mf.mp4(seconds=3),
        "mp4_5s": mf.mp4(seconds=5),
        "mp4_320": mf.mp4(seconds=2, size=(320, 240)),
        "mp4_x264": mf.mp4(seconds=3, codec="libx264"),
    }


def timed_hash(data: bytes, limits: DecodeLimits | None = None,
               labelled_kind: str | None = None) -> tuple[MediaHashes, float]:
    """hash_media with its wall time; any exception fails the test by itself."""
    started = time.monotonic()
    result = hash_media(data, limits, labelled_kind=labelled_kind)
    return result, time.monotonic() - started


def assert_exact_hashes(result: MediaHashes, data: bytes) -> None:
    """MD5 and SHA-256 are recorded for every file, whatever else happened to it."""
    assert result.md5 == hashlib.md5(data).hexdigest()
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.size == len(data)


# --- good media ---------------------------------------------------------------------------------------------------

IMAGES = ["jpeg", "png", "gif", "webp", "bmp", "tiff"]


@pytest.mark.parametrize("name", IMAGES)
def test_benign_images_are_hashed(samples: Samples, name: str) -> None:
    result, seconds = timed_hash(samples[name])
    assert (result.status, result.reason, result.content_kind) == ("hashed", None, "image")
    assert len(result.pdq or "") == 64 and len(result.phash or "") == 16 and len(result.dhash or "") == 16
    assert result.pdq_quality is not None and result.pdq_quality >= 50
    assert (result.width, result.height) == (160, 120)
    assert_exact_hashes(result, samples[name])
    assert seconds < MAX_SECONDS


@pytest.mark.parametrize("name", ["animated_gif", "mp4", "mp4_x264", "webm"])
def test_benign_animations_and_videos_are_hashed(samples: Samples, name: str) -> None:
    if name == "webm" and mf.webm_codec() is None:
        pytest.skip("no VP8/VP9 encoder in this PyAV build")
    data = mf.webm() if name == "webm" else samples[name]
    result, seconds = timed_hash(data)
    assert result.status == "hashed" and result.reason is None
    assert result.content_kind == ("animation" if name == "animated_gif" else "video")
    frames = result.frames or []
    assert len(frames) >= 2, "one PDQ per second of a multi-second clip"
    assert all(len(f["pdq"]) == 64 and isinstance(f["quality"], int) for f in frames)
    assert [f["ts"] for f in frames] == sorted(f["ts"] for f in frames)
    assert_exact_hashes(result, data)
    assert seconds < MAX_SECONDS


# --- hostile media ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile file and the outcome it must have."""

    build: Callable[[Samples], bytes]
    status: str
    reason: str  # a substring of the reason, lower-case
    kind: str | None = None  # the content kind sniffed from the bytes, when it matters
    labelled: str | None = None
    limits: DecodeLimits | None = None
    header_only: bool = False  # refused from the header: must be very fast


TINY_BUDGET = DecodeLimits(max_decode_seconds=0.0001, decode_seconds_per_video_second=1e-9)

CASES: dict[str, Case] = {
    # decompression bombs: refused from the header
    "png-ihdr-100000x100000": Case(lambda s: mf.png_bomb_header(), "skipped", "limit", header_only=True),
    "jpeg-sof-60000x60000": Case(lambda s: mf.jpeg_bomb_header(), "skipped", "limit", header_only=True),
    "gif-screen-65535x65535": Case(lambda s: mf.gif_bomb_header(), "skipped", "limit", header_only=True),
    "gif-third-frame-40000x40000": Case(lambda s: mf.gif_frame_bomb(), "skipped", "animation frame",
                                        header_only=True),
    "png-ztxt-64mb": Case(lambda s: mf.png_text_bomb(), "skipped", "decompression bomb", header_only=True),
    "mov-stsd-6016x6016": Case(lambda s: mf.mov_frame_size_bomb(), "skipped", "over the limit", "video",
                               header_only=True),
    "mp4-frame-over-limit": Case(lambda s: s["mp4_320"], "skipped", "over the limit", "video",
                                 limits=DecodeLimits(max_video_frame_pixels=320 * 240 - 1), header_only=True),
    # broken files: failed, with the decoder's reason
    "jpeg-first-half": Case(lambda s: mf.truncated(s["jpeg"], 0.5), "failed", "truncated"),
    "png-first-half": Case(lambda s: mf.truncated(s["png"], 0.5), "failed", "truncated"),
    "mp4-first-30pct": Case(lambda s: mf.truncated(s["mp4"], 0.3), "failed", "not a recognised video", "video"),
    "mp4-moov-removed": Case(lambda s: mf.mp4_without_moov(s["mp4"]), "failed", "not a recognised video", "video"),
    "mp4-moov-cut": Case(lambda s: mf.mp4_moov_cut(s["mp4"]), "failed", "not a recognised video", "video"),
    "mp4-bad-box-size": Case(lambda s: mf.mp4_bad_box_size(s["mp4"]), "failed", "no decoder", "video"),
    "jpeg-corrupt-scan": Case(lambda s: mf.jpeg_corrupt_scan(), "failed", "cannot decode image"),
    "jpeg-magic-then-noise": Case(lambda s: mf.jpeg_magic_random(), "failed", "image header"),
    "zero-bytes": Case(lambda s: b"", "failed", "empty", None, "photo"),
    # mislabelled files
    "text-as-photo": Case(lambda s: mf.text_file(), "failed", "not a recognised", None, "photo"),
    "text-starting-bm-as-photo": Case(lambda s: b"BM" + mf.text_file(), "failed", "not a recognised", None, "photo"),
    "text-starting-bm-as-document": Case(lambda s: b"BM" + mf.text_file(), "hashed", "exact hashes only", None,
                                         "document"),
    "pdf-as-photo": Case(lambda s: mf.pdf_like(), "failed", "not a recognised", None, "photo"),
    "pdf-as-document": Case(lambda s: mf.pdf_like(), "hashed", "exact hashes only", None, "document"),
    "ogg-opus-as-voice-message": Case(lambda s: mf.ogg_opus(), "hashed", "exact hashes only", None,
                                      "voice_message"),
    "m4a-as-audio-file": Case(lambda s: mf.m4a(), "hashed", "exact hashes only", None, "audio_file"),
    "ogg-opus-as-video": Case(lambda s: mf.ogg_opus(), "failed", "no video stream", "video", "video"),
    # limits on time
    "video-decode-budget": Case(lambda s: s["mp4_5s"], "failed", "took longer", "video",
                                limits=TINY_BUDGET),
    "animation-decode-budget": Case(lambda s: s["animated_gif"], "failed", "took longer",
                                    limits=TINY_BUDGET),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_media(samples: Samples, name: str) -> None:
    case = CASES[name]
    data = case.build(samples)
    result, seconds = timed_hash(data, limits=case.limits, labelled_kind=case.labelled)
    assert result.status == case.status, result.reason
    assert result.reason and case.reason in result.reason.lower(), result.reason
    if case.kind is not None or case.status == "hashed":
        assert result.content_kind == case.kind
    assert_exact_hashes(result, data)
    if case.status != "hashed" or case.labelled in ("document", "audio_file", "voice_message"):
        # Refused or exact-only: no perceptual hash may be left behind (not even the first frame's).
        assert (result.pdq, result.phash, result.dhash, result.frames) == (None, None, None, None)
    assert seconds < (HEADER_SECONDS if case.header_only else MAX_SECONDS)


def test_mp4_named_jpg_is_hashed_as_video(samples: Samples) -> None:
    """Names and labels lie: the bytes say video, so it is hashed as one."""
    result, seconds = timed_hash(samples["mp4"], labelled_kind="photo")
    assert (result.status, result.content_kind) == ("hashed", "video")
    assert result.frames and result.pdq is None
    assert seconds < MAX_SECONDS


def test_long_video_is_hashed_up_to_the_limit(samples: Samples) -> None:
    """A 5 s clip with max_video_seconds=2: hashed, frames at 0, 1 and 2 s only, and the reason says so."""
    result, seconds = timed_hash(samples["mp4_5s"], DecodeLimits(max_video_seconds=2))
    assert result.status == "hashed"
    assert result.reason and "max_video_seconds" in result.reason
    assert [f["ts"] for f in result.frames or []] == [0.0, 1.0, 2.0]
    assert seconds < MAX_SECONDS


def test_truncated_animation_keeps_the_frames_it_has(samples: Samples) -> None:
    """A GIF cut mid-way is hashed on the frames before the cut (Pillow raised IndexError here)."""
    data = mf.truncated(samples["animated_gif"], 0.4)
    result, seconds = timed_hash(data)
    assert (result.status, result.content_kind) == ("hashed", "animation")
    assert result.frames and result.frames_decoded is not None and 1 <= result.frames_decoded < 30
    assert seconds < MAX_SECONDS


# --- the CLI ------------------------------------------------------------------------------------------------------

MAGIC = (b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"\xff\xd8\xff\xdb", b"\xff\xd8\xff\xee", b"\x89PNG\r\n\x1a\n",
         b"GIF87a", b"GIF89a", b"WEBPVP8", b"ftypisom", b"ftypmp42", b"ftypavc1", b"ftypiso5", b"\x1a\x45\xdf\xa3")

GOOD_FILES: dict[str, Callable[[Samples], bytes]] = {
    "photo.jpg": lambda s: s["jpeg"],
    "diagram.png": lambda s: s["png"],
    "clips/anim.gif": lambda s: s["animated_gif"],
    "clips/clip.mp4": lambda s: s["mp4"],
    "clips/really-a-video.jpg": lambda s: s["mp4"],
}
HOSTILE_FILES: dict[str, Callable[[Samples], bytes]] = {
    "bomb.png": lambda s: mf.png_bomb_header(),
    "bomb.jpg": lambda s: mf.jpeg_bomb_header(),
    "frame-bomb.gif": lambda s: mf.gif_frame_bomb(),
    "half.jpg": lambda s: mf.truncated(s["jpeg"], 0.5),
    "empty.jpg": lambda s: b"",
    "notes.jpg": lambda s: mf.text_file(),
    "noise.jpg": lambda s: mf.jpeg_magic_random(),
    "clips/cut.mp4": lambda s: mf.truncated(s["mp4"], 0.3),
    "clips/no-index.mp4": lambda s: mf.mp4_moov_cut(s["mp4"]),
}


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`chanwatch ARGS` as a real process, in tmp_path, with its own TMPDIR and no ambient config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANWATCH_")}
    env.update(TMPDIR=str(tmp_path / "tmp"), COLUMNS="200", PYTHONPATH=str(REPO))
    return subprocess.run([*CLI, *args], cwd=tmp_path, env=env, capture_output=True, timeout=120)


def files_with_media_magic(root: Path, exclude: Path | None = None) -> list[Path]:
    """Files under root holding an image or video signature anywhere in their bytes."""
    hits = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or (exclude is not None and path.is_relative_to(exclude)):
            continue
        data = path.read_bytes()
        if any(magic in data for magic in MAGIC):
            hits.append(path)
    return hits


@pytest.mark.slow
def test_cli_hashes_a_mixed_folder_and_leaves_no_media_behind(samples: Samples, tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    folder = tmp_path / "input"
    for name, build in {**GOOD_FILES, **HOSTILE_FILES}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(build(samples))

    result = run_cli(tmp_path, "hash", "--workers", "2", str(folder))
    output = tmp_path / "hash-output.jsonl"
    output.write_bytes(result.stdout)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"Traceback" not in result.stderr, result.stderr.decode(errors="replace")

    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    by_name = {Path(line["path"]).relative_to(folder).as_posix(): line for line in lines}
    assert len(lines) == len(by_name) == len(GOOD_FILES) + len(HOSTILE_FILES)
    assert set(by_name) == set(GOOD_FILES) | set(HOSTILE_FILES)
    for name in GOOD_FILES:
        line = by_name[name]
        assert line["error"] is None, (name, line["error"])
        assert line["md5"] and line["sha256"]
        if line["media_kind"] == "image":
            assert line["pdq"] and line["phash"] and line["dhash"], name
        else:
            assert line["frames"], name
    assert by_name["clips/anim.gif"]["media_kind"] == "animation"
    assert by_name["clips/really-a-video.jpg"]["media_kind"] == "video"
    for name in HOSTILE_FILES:
        line = by_name[name]
        assert isinstance(line["error"], str) and line["error"].startswith(("skipped: ", "failed: ")), (name, line)
        assert line["md5"] and line["sha256"], name
    assert by_name["bomb.png"]["error"].startswith("skipped: decompression bomb")

    # Nothing decoded or copied may be at rest anywhere but the input folder (the scan itself must work).
    assert files_with_media_magic(folder)
    assert files_with_media_magic(tmp_path, exclude=folder) == []


@pytest.mark.parametrize("args", [["hash"], ["hash", "--workers", "-1", "x.jpg"], ["hash", "--no-such-option", "x"]],
                         ids=["no-paths", "negative-workers", "unknown-option"])
def test_cli_bad_usage_exits_2(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "tmp").mkdir()
    result = run_cli(tmp_path, *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert b"Traceback" not in result.stderr
