"""Recall of chanwatch's image hashes against a naive full-decode baseline, on reposters' edits.

Generates benign photo-like pictures (tests/robustness.py), stores them as JPEG q92, applies the eight
edits, and reports per edit the share of (original, edited) pairs each hash still matches at the
default thresholds, the median distances, and the false positives between distinct pictures. "Ours" is
`hash_media` (reduced JPEG decode); the reference is a full PIL decode fed to pdqhash and imagehash.
PDQ recall is also measured for other `reduce_min_side` settings, since that setting trades speed for
fidelity.

    python bench/bench_recall.py [--images 100] [--seed 2024] [--workers 2] [--variants 320,640,off]
                                 [--markdown docs/benchmarks.md]

With --markdown the section titled below is replaced in that file (or appended); the rest of the file
is kept byte for byte, since other benchmarks write other sections of it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import os
import platform
import shlex
import sys
import time
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the harness lives in tests/, which is not an installed package
sys.path.insert(0, str(REPO / "bench"))

from common import cpu_model, replace_section  # noqa: E402

from processing.hashing.limits import DecodeLimits  # noqa: E402
from tests.robustness import (  # noqa: E402
    DEFAULT_THRESHOLDS,
    ORIGINAL_QUALITY,
    SIZE,
    TRANSFORMS,
    RecallTable,
    edited_files,
    hash_files,
    natural_images,
    ours_signals,
    reference_signals,
    score_side,
)

SECTION_TITLE = "## Hash robustness: recall at the default thresholds"
OFF = 2**31  # a reduce_min_side no picture reaches: always the full decode
COLUMNS = [("PDQ ours", "pdq_ours"), ("PDQ ref", "pdq_ref"), ("PDQ dihedral ours", "pdq_dihedral_ours"),
           ("pHash ours", "phash_ours"), ("pHash ref", "phash_ref"), ("dHash ours", "dhash_ours"),
           ("dHash ref", "dhash_ref")]
FP_SIGNALS = [("PDQ", "pdq"), ("PDQ dihedral", "pdq_dihedral"), ("pHash", "phash"), ("dHash", "dhash")]


@dataclasses.dataclass
class Run:
    table: RecallTable
    variants: dict[str, str]  # side name in `table` -> label, for the reduce_min_side table
    seconds: float


# --- measuring ----------------------------------------------------------------------------------------------


def parse_variants(text: str) -> list[int]:
    """'320,640,off' -> [320, 640, OFF]."""
    return [OFF if item.strip() == "off" else int(item) for item in text.split(",") if item.strip()]


def variant_label(min_side: int) -> str:
    default = DecodeLimits().reduce_min_side
    if min_side == OFF:
        return "off (full decode)"
    return f"{min_side} (default)" if min_side == default else str(min_side)


def variant_side(min_side: int) -> str:
    """Column suffix: the default setting is "ours" itself."""
    if min_side == DecodeLimits().reduce_min_side:
        return "ours"
    return "full" if min_side == OFF else f"rms{min_side}"


def measure(images: int, seed: int, workers: int, variants: list[int]) -> Run:
    """Hash every file with ours, the reference and each extra reduce_min_side setting, then score."""
    started = time.monotonic()
    files = edited_files(natural_images(images, seed))
    table = RecallTable(images=images)
    sides = {"ours": ours_signals, "ref": reference_signals}
    labels = {}
    for min_side in variants:
        limits = dataclasses.replace(DecodeLimits(), reduce_min_side=min_side)
        side = variant_side(min_side)
        sides.setdefault(side, functools.partial(ours_signals, limits=limits))
        labels[side] = variant_label(min_side)
    for side, fn in sides.items():
        side_started = time.monotonic()
        score_side(table, side, hash_files(files, fn, workers), DEFAULT_THRESHOLDS)
        print(f"  hashed {side}: {time.monotonic() - side_started:.1f} s", file=sys.stderr)
    return Run(table, labels, time.monotonic() - started)


# --- rendering ----------------------------------------------------------------------------------------------


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(first: str, names: list[str]) -> list[str]:
    return [_row([first, *names]), "|---" + "|---:" * len(names) + "|"]


def recall_markdown(table: RecallTable) -> str:
    lines = _header("edit", [name for name, _ in COLUMNS])
    for edit in TRANSFORMS:
        lines.append(_row([edit, *(f"{table.recall[column][edit]:.0f}%" for _, column in COLUMNS)]))
    return "\n".join(lines)


def distance_markdown(table: RecallTable) -> str:
    lines = _header("edit", [name for name, _ in COLUMNS])
    for edit in TRANSFORMS:
        lines.append(_row([edit, *(f"{table.median_distance[column][edit]:g}" for _, column in COLUMNS)]))
    return "\n".join(lines)


def false_positive_markdown(table: RecallTable) -> str:
    lines = _header("signal", ["ours", "ref"])
    for name, signal in FP_SIGNALS:
        lines.append(_row([name, *(str(table.false_positives[f"{signal}_{side}"]) for side in ("ours", "ref"))]))
    return "\n".join(lines)


def variants_markdown(run: Run) -> str:
    """PDQ recall (median distance) per edit for each reduce_min_side, and their PDQ false positives."""
    sides = list(run.variants)
    lines = _header("edit", [f"reduce_min_side {run.variants[side]}" for side in sides])
    for edit in TRANSFORMS:
        lines.append(_row([edit, *(f"{run.table.recall[f'pdq_{side}'][edit]:.0f}% "
                                   f"({run.table.median_distance[f'pdq_{side}'][edit]:g})" for side in sides)]))
    lines.append(_row(["false positives", *(str(run.table.false_positives[f"pdq_{side}"]) for side in sides)]))
    return "\n".join(lines)


def machine_line() -> str:
    return (f"{len(os.sched_getaffinity(0))} CPUs (nproc), {cpu_model()}; Python {platform.python_version()}, "
            f"Pillow {version('pillow')}, pdqhash {version('pdqhash')}, ImageHash {version('imagehash')}")


def markdown_section(run: Run, seed: int, command: str) -> str:
    table = run.table
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    limits = DecodeLimits()
    return "\n".join([
        SECTION_TITLE, "",
        f"Measured {when} on {machine_line()}; {run.seconds:.0f} s.", "",
        f"Command: `{command}`", "",
        f"{table.images} generated, benign photo-like pictures of {SIZE[0]}x{SIZE[1]} (`tests/robustness.py`, seed "
        f"{seed}), stored as JPEG quality {ORIGINAL_QUALITY}. Each edit is applied to the decoded original and "
        "saved as JPEG (quality 90 unless the edit says otherwise; `crop_5` cuts 5% off every edge and is not "
        "resized back; `telegram_640` is longest side 640 at quality 80). **Ours** is `hash_media` "
        f"(reduce_min_side {limits.reduce_min_side}: JPEGs whose shorter side is at least that are decoded at "
        "half size, luma only, and PDQ applies the full-size image's filter to them: processing/hashing/pdq.py); "
        "**ref** is a full PIL decode fed to `pdqhash.compute` and `imagehash.phash`/`dhash`.", "",
        f"Recall is the share of (original, edited) pairs that match: PDQ distance <= {DEFAULT_THRESHOLDS['pdq']} "
        f"with both qualities >= {DEFAULT_THRESHOLDS['pdq_quality']} (a low-quality pair is a miss), pHash and "
        f"dHash distance <= {DEFAULT_THRESHOLDS['phash']}. PDQ dihedral compares the edited picture's 8 "
        "rotations/flips (`processing.hashing.pdq.pdq_dihedral`, from the same reduced decode) and keeps the smallest "
        "distance.", "",
        recall_markdown(table), "",
        "Median distance of the same pairs (recall saturates; the distance shows the margin left):", "",
        distance_markdown(table), "",
        f"False positives: matching pairs of distinct pictures, out of {table.fp_pairs:,} ordered pairs "
        "(the original or any edit of one picture against the original of another):", "",
        false_positive_markdown(table), "",
        "PDQ recall (median distance) of ours under other `reduce_min_side` settings. In this set the "
        "originals and most edits are 1280x960 (crop_5: 1152x864) and resize_50/telegram_640 are 640x480:", "",
        variants_markdown(run), "",
    ])


def console_report(run: Run) -> str:
    table = run.table
    return "\n\n".join([
        f"Recall at the default thresholds, {table.images} images:", recall_markdown(table),
        "Median distances:", distance_markdown(table),
        f"False positives (of {table.fp_pairs:,} ordered pairs of distinct images):", false_positive_markdown(table),
        "PDQ recall (median distance) by reduce_min_side:", variants_markdown(run),
    ])


# --- main ---------------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100, help="number of generated pictures")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="hashing processes")
    parser.add_argument("--variants", default="320,640,off",
                        help="reduce_min_side settings to compare for ours, comma-separated; 'off' = full decode")
    parser.add_argument("--markdown", type=Path, help="replace or append the results section in this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    args = parse_args(raw)
    if args.images < 2:
        raise SystemExit("--images must be at least 2 (false positives need distinct pictures)")
    run = measure(args.images, args.seed, args.workers, parse_variants(args.variants))
    print(console_report(run))
    if args.markdown:
        command = shlex.join(["python", "bench/bench_recall.py", *raw])
        replace_section(args.markdown, SECTION_TITLE, markdown_section(run, args.seed, command))
        print(f"\nwrote section {SECTION_TITLE!r} to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
