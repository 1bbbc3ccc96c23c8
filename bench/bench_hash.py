"""Benchmark `chanwatch hash` against the naive hasher (bench/naive_hash.py), for speed and memory.

Everything hashed is benign and generated here, deterministically from --seed, into --workdir
(git-ignored; cached between runs):

- photos: N photo-like 1280x960 JPEGs (procedural: multi-scale noise, gradients, soft shapes; q88);
- video: a 20 s 720p clip at 30 fps of moving shapes over a texture, and a 360p version;
- large and hostile inputs: a PNG whose header claims 100000x100000 pixels (a decompression bomb),
  a 48 Mpx JPEG, the largest still image the limits allow (90 Mpx PNG), a 3 s 4K clip and a 1 s 8K clip.

Photo speed is timed as whole processes (start-up included) on the same files in the same run, and
again in-process on bytes in memory, so start-up cost shows. Peak memory is the larger of wait4's
ru_maxrss and the RSS of the process tree sampled every 50 ms.

    python bench/bench_hash.py [--images 200] [--workdir var/bench/hash] [--repeats 5]
                               [--markdown docs/benchmarks.md]

Exit status: 0 when every run succeeded and every target passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
import platform
import re
import shlex
import statistics
import struct
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import psutil
from PIL import Image, ImageDraw, ImageFilter

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))  # run as a script from anywhere: processing/ is a top-level package
sys.path.insert(0, str(BENCH_DIR))

from common import Launched, cpu_model, launch_measured, replace_section  # noqa: E402
from naive_hash import naive_hashes  # noqa: E402

from processing.hashing import hash_media  # noqa: E402
from processing.hashing.exact import exact_hashes  # noqa: E402
from processing.hashing.images import decode_for_hashing, hashes_of_image, open_image  # noqa: E402
from processing.hashing.limits import DecodeLimits  # noqa: E402
from processing.hashing.pdq import pdq_of  # noqa: E402
from processing.hashing.video import hash_video  # noqa: E402

NAIVE = BENCH_DIR / "naive_hash.py"
DEFAULT_CHANWATCH = REPO / ".venv" / "bin" / "chanwatch"
SECTION_TITLE = "## Media hashing speed and memory"
GEN_VERSION = 1  # bump when a generator changes, so cached media are rebuilt
PHOTO_SIZE = (1280, 960)
JPEG_QUALITY = 88
CLIP_SECONDS, CLIP_FPS = 20, 30
SAMPLE_SECONDS = 0.05
MB = 1_000_000
RSS_LIMIT_MB = 1000
SPEEDUP_TARGET = 4.0


# --- generated media ----------------------------------------------------------------------------


def fractal_noise(rng: np.random.Generator, w: int, h: int, octaves: int, base: int = 3,
                  falloff: float = 0.6) -> np.ndarray:
    """Sum of upsampled random grids, coarse to fine: the 1/f texture that makes pictures look natural."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for octave in range(octaves):
        gw = min(base * 2**octave + 1, w)
        gh = min(max(2, gw * h // w), h)
        grid = Image.fromarray(rng.random((gh, gw), dtype=np.float32), mode="F")
        out += amp * np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC))
        total += amp
        amp *= falloff
    return out / total


def shape_alpha(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Alpha of one ellipse or polygon, edges softened by a random blur (focus varies in photos)."""
    sw, sh = w // 2, h // 2
    mask = Image.new("L", (sw, sh))
    cx, cy = rng.random() * sw, rng.random() * sh
    rx, ry = rng.uniform(0.03, 0.22) * sw, rng.uniform(0.03, 0.22) * sh
    draw = ImageDraw.Draw(mask)
    if rng.random() < 0.5:
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    else:
        angles = np.sort(rng.uniform(0, 2 * np.pi, 6))
        draw.polygon([(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in angles], fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(float(rng.choice([0.6, 1.0, 2.5, 6.0]))))
    return np.asarray(mask.resize((w, h), Image.Resampling.BILINEAR), np.float32)[..., None] / 255


def photo(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A benign photo-like picture: tilted sky-like gradient, clouds of noise, soft shapes, grain."""
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    top, bottom = rng.uniform(40, 230, 3), rng.uniform(20, 180, 3)
    t = np.clip(yy + rng.uniform(-0.4, 0.4) * (xx - 0.5), 0, 1)[..., None]
    img = (top * (1 - t) + bottom * t).astype(np.float32)
    img += (fractal_noise(rng, w, h, 5)[..., None] - 0.5) * rng.uniform(40, 90, 3).astype(np.float32)
    tex = fractal_noise(rng, w, h, 9, base=4, falloff=0.85)
    tex = (tex - tex.mean()) / (tex.std() + 1e-6)
    for _ in range(int(rng.integers(4, 9))):
        alpha = shape_alpha(rng, w, h)
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        shade = 1 + 0.12 * tex[:: rng.choice([-1, 1]), :: rng.choice([-1, 1])]
        img = img * (1 - alpha) + colour * shade[..., None] * alpha
    img *= (1 + 0.08 * tex)[..., None]
    img += rng.normal(0, 3.5, (h, w, 1)).astype(np.float32) + rng.normal(0, 1.5, (h, w, 3)).astype(np.float32)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _write_photo(job: tuple[Path, int, int]) -> None:
    path, seed, index = job
    tmp = path.with_suffix(".tmp")
    photo(np.random.default_rng([seed, index]), *PHOTO_SIZE).save(tmp, "JPEG", quality=JPEG_QUALITY)
    tmp.replace(path)


def ensure_photos(workdir: Path, count: int, seed: int) -> list[Path]:
    """The first `count` photos for `seed`, generating only those not cached (in parallel: it is slow)."""
    folder = workdir / f"photos-v{GEN_VERSION}-seed{seed}-{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo-{i:05d}.jpg" for i in range(count)]
    todo = [(p, seed, i) for i, p in enumerate(paths) if not p.exists()]
    if todo:
        print(f"generating {len(todo)} photos in {folder}", flush=True)
        with ProcessPoolExecutor() as pool:
            list(pool.map(_write_photo, todo, chunksize=4))
    return paths


@dataclass
class Sprite:
    """A shape moving in a straight line and bouncing off the frame edges."""

    x: float
    y: float
    vx: float
    vy: float
    r: float
    colour: tuple[int, int, int]
    round: bool

    def step(self, w: int, h: int) -> None:
        self.x, self.y = self.x + self.vx, self.y + self.vy
        if not 0 <= self.x <= w:
            self.vx = -self.vx
        if not 0 <= self.y <= h:
            self.vy = -self.vy


def _sprites(rng: np.random.Generator, w: int, h: int, count: int = 7) -> list[Sprite]:
    scale = w / 1280
    return [Sprite(rng.random() * w, rng.random() * h, rng.uniform(-9, 9) * scale, rng.uniform(-6, 6) * scale,
                   rng.uniform(30, 140) * scale, tuple(int(c) for c in rng.integers(0, 256, 3)),
                   bool(rng.random() < 0.5)) for _ in range(count)]


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A textured backdrop 25% larger than the frame, so it can pan; drawn at <= 720p and upscaled."""
    bw, bh = int(w * 1.25), int(h * 1.25)
    shrink = max(1, round(w / 1280))
    small = photo(rng, bw // shrink, bh // shrink)
    return np.asarray(small.resize((bw, bh), Image.Resampling.BICUBIC) if shrink > 1 else small)


def clip_frames(seed: int, w: int, h: int, frames: int) -> Iterator[np.ndarray]:
    """Moving shapes over a panning texture, with one scene cut half way (as edited clips have)."""
    rng = np.random.default_rng([seed, w, h])
    scenes = [_background(rng, w, h), _background(rng, w, h)]
    sprites = _sprites(rng, w, h)
    for index in range(frames):
        bg = scenes[0] if index < frames // 2 else scenes[1]
        ox = int((bg.shape[1] - w) * (0.5 + 0.5 * np.sin(index / 90)))
        oy = int((bg.shape[0] - h) * (0.5 + 0.5 * np.cos(index / 130)))
        frame = Image.fromarray(bg[oy:oy + h, ox:ox + w])
        draw = ImageDraw.Draw(frame)
        for sprite in sprites:
            box = [sprite.x - sprite.r, sprite.y - sprite.r, sprite.x + sprite.r, sprite.y + sprite.r]
            (draw.ellipse if sprite.round else draw.rectangle)(box, fill=sprite.colour)
            sprite.step(w, h)
        yield np.asarray(frame)


def video_codec() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def ensure_clip(workdir: Path, seed: int, w: int, h: int, seconds: float, preset: str = "medium") -> Path:
    """An MP4 clip (libx264, else mpeg4) at 30 fps; big frame sizes use a fast preset to stay cheap."""
    codec = video_codec()
    path = workdir / f"clip-v{GEN_VERSION}-seed{seed}-{w}x{h}-{seconds:g}s-{codec}-{preset}.mp4"
    if path.exists():
        return path
    print(f"generating {path.name}", flush=True)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream(codec, rate=CLIP_FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": preset, "crf": "23"}
        for rgb in clip_frames(seed, w, h, int(seconds * CLIP_FPS)):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    tmp.replace(path)
    return path


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def ensure_bomb_png(workdir: Path, side: int = 100_000, rows: int = 64) -> Path:
    """A valid PNG header claiming side x side RGB pixels (30 GB decoded); the data holds a few rows."""
    path = workdir / f"bomb-{side}x{side}.png"
    if not path.exists():
        ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
        idat = zlib.compress(b"\x00" * ((1 + 3 * side) * rows), 9)
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
                         + _png_chunk(b"IEND", b""))
    return path


def ensure_large_image(workdir: Path, seed: int, w: int, h: int, fmt: str) -> Path:
    """A large picture: a photo drawn at 1/4 scale, upscaled, plus grain (JPEG) so it is not trivial."""
    path = workdir / f"large-v{GEN_VERSION}-seed{seed}-{w}x{h}.{fmt.lower()}"
    if path.exists():
        return path
    print(f"generating {path.name}", flush=True)
    rng = np.random.default_rng([seed, w, h])
    big = photo(rng, w // 4, h // 4).resize((w, h), Image.Resampling.BICUBIC)
    tmp = path.with_suffix(".tmp")
    if fmt == "JPEG":
        pixels = np.array(big)
        for top in range(0, h, 512):  # grain band by band: no full-size float copy
            band = pixels[top:top + 512]
            band[...] = np.clip(band + rng.normal(0, 3, (*band.shape[:2], 1)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(tmp, "JPEG", quality=JPEG_QUALITY)
    else:
        big.save(tmp, "PNG", compress_level=1)
    tmp.replace(path)
    return path


# --- measuring processes ------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult(Launched):
    """One measured process run; `lines` are its JSON output lines."""

    name: str
    lines: list[dict[str, Any]]
    stderr: str


def code_fingerprint() -> str:
    """Digest of chanwatch's hashing code: other people edit it, and a run must measure one version."""
    digest = hashlib.sha256()
    for path in sorted([*(REPO / "processing" / "hashing").glob("*.py"), REPO / "chanwatch" / "steps" / "hash_files.py",
                        REPO / "chanwatch" / "cli.py"]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()





def measure(name: str, cmd: list[str], workdir: Path) -> RunResult:
    """Run `cmd` in `workdir` (no chanwatch.toml there) to completion, timing it and its peak memory."""
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    out_log, err_log = logs / f"{name}.stdout.log", logs / f"{name}.stderr.log"
    run = launch_measured(cmd, workdir, out_log, err_log)
    lines = [json.loads(line) for line in out_log.read_text().splitlines() if line.startswith("{")]
    return RunResult(**vars(run), name=name, lines=lines, stderr=err_log.read_text(errors="replace"))


@dataclass
class Contender:
    """One way of hashing the photos, as a command line."""

    name: str
    cmd: list[str]
    runs: list[RunResult] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        """The fastest run: other jobs on the machine only ever add time, so the minimum is the least noisy."""
        return min(r.wall_s for r in self.runs)

    @property
    def median_s(self) -> float:
        return statistics.median(r.wall_s for r in self.runs)

    @property
    def peak_mb(self) -> float:
        return max(r.peak_mb for r in self.runs)

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.ok for r in self.runs)


def photo_contenders(chanwatch: Path, files: list[str], full_decode: bool) -> list[Contender]:
    hash_cmd = [str(chanwatch), "hash"]
    contenders = [Contender("naive", [sys.executable, str(NAIVE), *files]),
                  Contender("chanwatch --workers 1", [*hash_cmd, "--workers", "1", *files]),
                  Contender("chanwatch --workers 2", [*hash_cmd, "--workers", "2", *files])]
    if full_decode:
        contenders.append(Contender("chanwatch --full-decode --workers 1",
                                    [*hash_cmd, "--full-decode", "--workers", "1", *files]))
    return contenders


def run_interleaved(contenders: list[Contender], repeats: int, workdir: Path, tag: str) -> None:
    """Round-robin, so drift on a noisy machine hits every contender alike."""
    for round_no in range(repeats):
        for c in contenders:
            slug = re.sub(r"[^a-z0-9]+", "-", f"{tag} {c.name}".lower()).strip("-")
            run = measure(f"{slug}-{round_no}", c.cmd, workdir)
            c.runs.append(run)
            print(f"  [{tag}] {c.name}: {run.wall_s:.2f} s, peak {run.peak_mb:.0f} MB"
                  + ("" if run.ok else f", exit {run.returncode}"), flush=True)


# --- in-process figures -------------------------------------------------------------------------


def per_image_ms(fn: Callable[[bytes], Any], datas: Sequence[bytes], passes: int = 2) -> float:
    """Mean milliseconds per image of `fn` over bytes already in memory: the faster of `passes` passes.

    One warm-up call first: lazy imports (scipy.fftpack for pHash, say) are start-up, not per-image cost.
    """
    fn(datas[0])
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        for data in datas:
            fn(data)
        best = min(best, time.perf_counter() - started)
    return 1000 * best / len(datas)


def stage_ms(datas: Sequence[bytes], reduce: bool) -> dict[str, float]:
    """Where chanwatch's time goes per image, through its own stage functions (PDQ alone timed apart)."""
    limits = DecodeLimits()
    totals = dict.fromkeys(("decode", "PDQ + pHash + dHash", "MD5 + SHA-256", "(of which PDQ alone)"), 0.0)
    for data in datas:
        t0 = time.perf_counter()
        image = open_image(data, limits)
        full_size = image.size
        decoded = decode_for_hashing(image, limits, reduce)
        t1 = time.perf_counter()
        hashes_of_image(decoded, full_size)
        t2 = time.perf_counter()
        exact_hashes(data)
        t3 = time.perf_counter()
        pdq_of(np.asarray(decoded), full_size)
        t4 = time.perf_counter()
        for key, spent in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            totals[key] += spent
    return {k: 1000 * v / len(datas) for k, v in totals.items()}


@dataclass
class InProcess:
    naive_ms: float
    chanwatch_ms: float
    full_decode_ms: float
    stages_half: dict[str, float]
    stages_full: dict[str, float]


def measure_in_process(files: list[str]) -> InProcess:
    datas = [Path(f).read_bytes() for f in files]
    return InProcess(per_image_ms(naive_hashes, datas), per_image_ms(hash_media, datas),
                     per_image_ms(lambda d: hash_media(d, reduce=False), datas),
                     stage_ms(datas, reduce=True), stage_ms(datas, reduce=False))


@dataclass
class VideoFigures:
    label: str
    seconds: float
    frames_decoded: int
    pdq_frames: int
    hash_s: float  # hash_video in-process
    decode_only_s: float  # PyAV decode of every frame, nothing else: the codec's ceiling
    process: RunResult | None = None

    @property
    def rtf(self) -> float:
        return self.seconds / self.hash_s


def decode_only_seconds(data: bytes) -> float:
    started = time.perf_counter()
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # as hash_video does
        for _ in container.decode(stream):
            pass
    return time.perf_counter() - started


def measure_video(label: str, path: Path, passes: int = 3) -> VideoFigures:
    """hash_video and a decode-only pass on the clip in memory, each the fastest of `passes` (noisy machine)."""
    data = path.read_bytes()
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        result = hash_video(data)
        best = min(best, time.perf_counter() - started)
    decode_only = min(decode_only_seconds(data) for _ in range(passes))
    return VideoFigures(label, result.duration_s or 0.0, result.frames_decoded, len(result.frames), best, decode_only)


# --- checks on the output -----------------------------------------------------------------------


def _hamming(a: str | None, b: str | None) -> int | None:
    if not a or not b:
        return None
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def agreement(naive: RunResult, other: RunResult) -> dict[str, Any]:
    """How `other`'s hashes compare with the naive ones, file by file."""
    by_path = {line["path"]: line for line in naive.lines}
    exact = same_pdq = 0
    dist: dict[str, list[int]] = {"pdq": [], "phash": [], "dhash": []}
    for line in other.lines:
        ref = by_path.get(line["path"])
        if ref is None:
            continue
        exact += line.get("md5") == ref.get("md5") and line.get("sha256") == ref.get("sha256")
        same_pdq += line.get("pdq") == ref.get("pdq")
        for key, values in dist.items():
            d = _hamming(line.get(key), ref.get(key))
            if d is not None:
                values.append(d)
    return {"files": len(other.lines), "exact_equal": exact, "pdq_equal": same_pdq,
            **{f"{k}_mean": statistics.fmean(v) if v else float("nan") for k, v in dist.items()},
            **{f"{k}_max": max(v) if v else -1 for k, v in dist.items()}}


def hashed_count(run: RunResult) -> int:
    return sum(1 for line in run.lines if not line.get("error") and line.get("pdq"))


def status_of(run: RunResult) -> tuple[str, str]:
    """(status, error) of a one-file `chanwatch hash` run, or what went wrong when it printed nothing."""
    if not run.lines:
        return ("no output", run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "")
    line = run.lines[0]
    return (str(line.get("status")), str(line.get("error") or ""))


# --- reporting ----------------------------------------------------------------------------------


def photo_table(contenders: list[Contender], count: int) -> str:
    naive_rate = count / contenders[0].wall_s
    rows = ["| hasher | images | wall s (best) | wall s (median) | images/s (best) | × naive | peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for c in contenders:
        if not c.ok:
            rows.append(f"| {c.name} | {count} | failed | – | – | – | – |")
            continue
        rate = count / c.wall_s
        rows.append(f"| {c.name} | {count} | {c.wall_s:.2f} | {c.median_s:.2f} | {rate:.1f} | "
                    f"{rate / naive_rate:.2f}× | {c.peak_mb:.0f} |")
    return "\n".join(rows)


def in_process_table(ip: InProcess, startup: dict[str, float]) -> str:
    rows = ["| hasher (in-process, bytes in memory) | ms/image | images/s | × naive | start-up s |",
            "|---|---:|---:|---:|---:|"]
    for name, ms, key in (("naive steps", ip.naive_ms, "naive"),
                          ("chanwatch `hash_media` (half-size luma JPEG decode)", ip.chanwatch_ms, "chanwatch"),
                          ("chanwatch `hash_media(reduce=False)`", ip.full_decode_ms, None)):
        start = f"{startup[key]:.2f}" if key in startup else "–"
        rows.append(f"| {name} | {ms:.1f} | {1000 / ms:.1f} | {ip.naive_ms / ms:.2f}× | {start} |")
    return "\n".join(rows)


def stage_table(ip: InProcess) -> str:
    rows = ["| stage (ms/image) | chanwatch, half-size luma decode | full-size RGB decode |", "|---|---:|---:|"]
    for key in ip.stages_half:
        rows.append(f"| {key} | {ip.stages_half[key]:.1f} | {ip.stages_full[key]:.1f} |")
    return "\n".join(rows)


def agreement_lines(name: str, ag: dict[str, Any]) -> list[str]:
    return [f"- {name} vs naive on {ag['files']} files: MD5+SHA-256 equal {ag['exact_equal']}/{ag['files']}, "
            f"PDQ identical {ag['pdq_equal']}/{ag['files']}; Hamming distance mean/max: "
            f"PDQ {ag['pdq_mean']:.1f}/{ag['pdq_max']} (of 256), pHash {ag['phash_mean']:.1f}/{ag['phash_max']}, "
            f"dHash {ag['dhash_mean']:.1f}/{ag['dhash_max']} (of 64)"]


def video_table(videos: list[VideoFigures]) -> str:
    rows = ["| clip | seconds | frames decoded | decoded fps | PDQ frames | PDQ frames/s | real-time × | "
            "decode-only fps | process wall s | process real-time × | process peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for v in videos:
        proc = v.process
        tail = (f"{proc.wall_s:.2f} | {v.seconds / proc.wall_s:.1f}× | {proc.peak_mb:.0f}" if proc and proc.ok
                else "failed | – | –")
        rows.append(f"| {v.label} | {v.seconds:.1f} | {v.frames_decoded} | {v.frames_decoded / v.hash_s:.0f} | "
                    f"{v.pdq_frames} | {v.pdq_frames / v.hash_s:.1f} | {v.rtf:.1f}× | "
                    f"{v.frames_decoded / v.decode_only_s:.0f} | {tail} |")
    return "\n".join(rows)


def length_limit_line(video: VideoFigures) -> str:
    """How long a video of this kind can be before the decode budget fails it, at the measured speed.

    The budget is max_decode_seconds plus decode_seconds_per_video_second per second decoded (the
    latter is 0 in versions that had a flat budget), so a video fails once t / rtf > base + per * t.
    """
    limits = DecodeLimits()
    base, per = limits.max_decode_seconds, getattr(limits, "decode_seconds_per_video_second", 0.0)
    wall_per_second = 1 / video.rtf
    budget = f"budget {base:g} s + {per:g} s per video second" if per else f"flat budget {base:g} s"
    if wall_per_second <= per:
        return f"at {video.rtf:.1f}× real time it stays within the decode {budget}, however long"
    return (f"at {video.rtf:.1f}× real time a video longer than about {base / (wall_per_second - per):.0f} s "
            f"overruns the decode {budget} and is failed")


@dataclass
class MemoryCase:
    label: str
    path: Path
    expect: str  # the status chanwatch should report
    run: RunResult | None = None


def memory_table(cases: list[MemoryCase]) -> str:
    rows = ["| input (`chanwatch hash --workers 1`) | file MB | status | wall s | peak RSS MB | < 1000 MB |",
            "|---|---:|---|---:|---:|---|"]
    for case in cases:
        run = case.run
        assert run is not None
        status, error = status_of(run)
        shown = status + (f" ({error.split(': ', 1)[-1]})" if error else "")
        rows.append(f"| {case.label} | {case.path.stat().st_size / MB:.1f} | {shown} | {run.wall_s:.2f} | "
                    f"{run.peak_mb:.0f} | {'yes' if run.peak_mb < RSS_LIMIT_MB else '**no**'} |")
    return "\n".join(rows)


def target_lines(contenders: list[Contender], cases: list[MemoryCase], count: int) -> list[str]:
    naive, cw1, cw2 = contenders[:3]
    def rate(c: Contender) -> float:
        return count / c.wall_s if c.ok else 0.0

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    all_hashed = all(hashed_count(r) == count for c in contenders for r in c.runs)
    speed = rate(cw1) / rate(naive) if rate(naive) else 0.0
    lines = [f"- {verdict(all_hashed)}: every photo run hashed all {count} images",
             f"- {verdict(speed >= SPEEDUP_TARGET)}: chanwatch --workers 1 at least {SPEEDUP_TARGET:g}× naive "
             f"images/s (measured {speed:.2f}×)",
             f"- {verdict(rate(cw2) > rate(cw1))}: chanwatch --workers 2 faster than --workers 1 "
             f"({rate(cw2):.1f} vs {rate(cw1):.1f} images/s)"]
    for case in cases:
        assert case.run is not None
        status, _ = status_of(case.run)
        lines.append(f"- {verdict(case.run.ok and case.run.peak_mb < RSS_LIMIT_MB)}: {case.label} under "
                     f"{RSS_LIMIT_MB} MB peak RSS ({case.run.peak_mb:.0f} MB)")
        if status != case.expect:
            lines.append(f"- FAIL: {case.label} status is {status!r}, expected {case.expect!r}")
    bomb = cases[0]
    assert bomb.run is not None
    lines.append(f"- {verdict(status_of(bomb.run)[0] == 'skipped')}: decompression bomb refused with status "
                 f"skipped (got {status_of(bomb.run)[0]!r})")
    return lines


def machine_line() -> str:
    from importlib.metadata import version

    libs = ", ".join(f"{name} {version(name)}" for name in ("pillow", "pdqhash", "imagehash", "av", "numpy"))
    return (f"{len(os.sched_getaffinity(0))} CPUs (nproc), {cpu_model()}, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM; Python {platform.python_version()}, {libs}; "
            f"video codec {video_codec()}")


def markdown_section(body: list[str], command: str) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([SECTION_TITLE, "", f"Measured {when} on {machine_line()}.", "",
                      f"Command: `{command}`", "", *body, ""])


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="runs per photo contender; the fastest counts")
    parser.add_argument("--workdir", type=Path, default=Path("var/bench/hash"))
    parser.add_argument("--markdown", type=Path, help="replace or append the results section in this file")
    parser.add_argument("--chanwatch", type=Path, default=DEFAULT_CHANWATCH, help="the chanwatch executable")
    parser.add_argument("--no-full-decode", action="store_true", help="skip the --full-decode contender")
    return parser.parse_args(argv)


def bench_photos(args: argparse.Namespace, workdir: Path) -> tuple[list[Contender], InProcess, dict[str, float]]:
    files = [str(p) for p in ensure_photos(workdir, args.images, args.seed)]
    for f in files:  # warm the page cache, so the first contender is not the one that pays for the disk
        Path(f).read_bytes()
    print(f"photos: {len(files)} x {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG q{JPEG_QUALITY}", flush=True)
    contenders = photo_contenders(args.chanwatch, files, not args.no_full_decode)
    run_interleaved(contenders, args.repeats, workdir, "photos")
    one = photo_contenders(args.chanwatch, files[:1], False)[:2]
    run_interleaved(one, args.repeats, workdir, "one photo")
    ip = measure_in_process(files)
    startup = {"naive": one[0].wall_s - ip.naive_ms / 1000, "chanwatch": one[1].wall_s - ip.chanwatch_ms / 1000}
    return contenders, ip, startup


def bench_videos(args: argparse.Namespace, workdir: Path) -> list[VideoFigures]:
    """360p and 720p clips, in-process and as a `chanwatch hash` process; the 720p one is last."""
    videos = []
    for label, (w, h) in (("360p (640x360)", (640, 360)), ("720p (1280x720)", (1280, 720))):
        clip = ensure_clip(workdir, args.seed, w, h, CLIP_SECONDS)
        figures = measure_video(label, clip)
        figures.process = measure(f"video-{h}p", [str(args.chanwatch), "hash", "--workers", "1", str(clip)], workdir)
        print(f"  [video] {label}: {figures.rtf:.1f}x real time in-process", flush=True)
        videos.append(figures)
    return videos


def bench_memory(args: argparse.Namespace, workdir: Path, clip720: VideoFigures) -> list[MemoryCase]:
    """Peak RSS of one in-process worker per input; the 720p clip's process run is reused."""
    cases = [
        MemoryCase("(i) PNG bomb, header 100000x100000", ensure_bomb_png(workdir), "skipped"),
        MemoryCase("(ii) JPEG 8000x6000 (48 Mpx)", ensure_large_image(workdir, args.seed, 8000, 6000, "JPEG"),
                   "hashed"),
        MemoryCase("(iii) video 3840x2160, 3 s", ensure_clip(workdir, args.seed, 3840, 2160, 3, "ultrafast"),
                   "hashed"),
        MemoryCase("(iv) video 1280x720, 20 s", ensure_clip(workdir, args.seed, 1280, 720, CLIP_SECONDS),
                   "hashed", clip720.process),
        MemoryCase("(v) PNG 10000x9000 (90 Mpx, the image limit)",
                   ensure_large_image(workdir, args.seed, 10000, 9000, "PNG"), "hashed"),
        MemoryCase("(vi) video 7680x4320 (33 Mpx frames, under the 36 Mpx limit), 1 s",
                   ensure_clip(workdir, args.seed, 7680, 4320, 1, "ultrafast"), "hashed"),
    ]
    for number, case in enumerate(cases):
        if case.run is None:
            case.run = measure(f"memory-{number}", [str(args.chanwatch), "hash", "--workers", "1", str(case.path)],
                               workdir)
            print(f"  [memory] {case.label}: {case.run.peak_mb:.0f} MB, {status_of(case.run)[0]}", flush=True)
    return cases


def report(args: argparse.Namespace, contenders: list[Contender], ip: InProcess, startup: dict[str, float],
           videos: list[VideoFigures], cases: list[MemoryCase]) -> list[str]:
    """The section body: tables and PASS/FAIL lines, the same on the terminal and in the markdown."""
    naive = contenders[0].runs[0]
    load = ", ".join(f"{x:.1f}" for x in (*args.load_start, *os.getloadavg()[:1]))
    body = [
        f"Load average (1 min) at start and end of the run: {load} (other jobs may share the machine). "
        "MB are 10^6 bytes. Peak RSS is the larger of the process's ru_maxrss (wait4, from a small launcher so it is "
        "not inherited from this large bench process) and the summed RSS of its process tree sampled every 50 ms "
        "(for `--workers 2` that counts pages shared after fork twice). The "
        "naive hasher is `bench/naive_hash.py`: full-size `PIL` decode, `pdqhash.compute`, `imagehash.phash`/"
        "`dhash`, `hashlib` MD5 and SHA-256, one file at a time. All inputs are generated benign media.",
        "",
        f"### Photos: {args.images} JPEGs, {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]}, quality {JPEG_QUALITY}",
        "",
        f"Whole processes on the same files, start-up included; {args.repeats} interleaved runs each, rates "
        "from the fastest (other jobs only add time):",
        "", photo_table(contenders, args.images), "",
        "In-process, bytes already in memory (start-up = one-photo process wall time minus one image's work):",
        "", in_process_table(ip, startup), "",
        "Where the time goes, in-process:", "", stage_table(ip), "",
        *agreement_lines("chanwatch --workers 1", agreement(naive, contenders[1].runs[0])),
    ]
    if len(contenders) > 3:
        body += agreement_lines("chanwatch --full-decode", agreement(naive, contenders[3].runs[0]))
    body += [
        "", f"### Video: {CLIP_SECONDS} s clips at {CLIP_FPS} fps ({video_codec()})", "",
        "`hash_video` in-process, fastest of 3 (decodes every frame, PDQ on one frame per second); decode-only is PyAV "
        "decoding every frame and nothing else, with FFmpeg's default threads; process = "
        "`chanwatch hash --workers 1 CLIP`, start-up included.", "",
        video_table(videos), "",
        *(f"- {v.label}: {length_limit_line(v)}" for v in videos),
        "", "### Memory of one worker on large and hostile inputs", "",
        memory_table(cases), "",
        "### Targets", "", *target_lines(contenders, cases, args.images),
    ]
    return body


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    args = parse_args(raw)
    args.chanwatch = args.chanwatch.resolve()
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    args.load_start = os.getloadavg()[:1]
    fingerprint = code_fingerprint()

    contenders, ip, startup = bench_photos(args, workdir)
    videos = bench_videos(args, workdir)
    cases = bench_memory(args, workdir, videos[-1])

    body = report(args, contenders, ip, startup, videos, cases)
    if code_fingerprint() != fingerprint:
        body.append("- FAIL: chanwatch's hashing code changed during this run; the figures mix versions, run again")
    print("\n" + "\n".join(body))
    if args.markdown:
        command = shlex.join(["python", "bench/bench_hash.py", *raw])
        replace_section(args.markdown, SECTION_TITLE, markdown_section(body, command))
        print(f"\nwrote section {SECTION_TITLE!r} to {args.markdown}")
    failed = any(not c.ok for c in contenders) or any(line.startswith("- FAIL") for line in body)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
