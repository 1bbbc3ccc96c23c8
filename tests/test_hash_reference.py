"""Our hashes against the reference implementations' published values (shared reference data).

PDQ: ports differ by a few bits (decoders, resizing), so the accepted rule is that a hash whose quality
is >= 80 lies within Hamming distance 10 of Meta's C++ reference. It must hold for the full decode and
for the reduced (DCT-scaled) JPEG decode that production uses; tests/test_pdq.py checks our PDQ
arithmetic against the pdqhash binding bit for bit. pHash and dHash come from imagehash
itself, so they must equal the values imagehash's own tests expect, bit for bit.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from processing.hashing import hash_media
from processing.hashing.images import ImageHashes, hash_image
from tests.robustness import hamming

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared beside the repository, as CI has it
if not DATA.exists():
    pytest.skip(f"shared reference data not found at {DATA} (clone the repository beside shared/)",
                allow_module_level=True)
PDQ_DIR = DATA / "pdq-reference-vectors"
IMAGEHASH_DIR = DATA / "imagehash-test-images"

MIN_QUALITY = 80
MAX_DISTANCE = 10
MIN_CHECKED = 12  # 8 bridge dihedral images + 5 labelme scenes + pen-and-coaster reach quality 80

DECODES = {
    "full": {"reduce": False},
    "reduced_default": {"reduce": True},
}


def cpp_reference_rows() -> list[tuple[str, str]]:
    """(expected hex, path relative to the folder) for every row whose image was copied here."""
    with (PDQ_DIR / "expected_cpp_reference.csv").open(newline="") as f:
        return [(hexes, rel) for hexes, rel in csv.reader(f) if (PDQ_DIR / rel).exists()]


def test_reference_data_is_present() -> None:
    """The exif-rotn rows have no image here (not copied, 3+ MB each); everything else must be present."""
    rows = cpp_reference_rows()
    assert len(rows) >= 16, f"only {len(rows)} PDQ reference images found under {PDQ_DIR}"


@pytest.mark.parametrize("decode", DECODES)
def test_pdq_matches_cpp_reference(decode: str) -> None:
    checked, halved, report, failures = 0, 0, [], []
    for expected, rel in cpp_reference_rows():
        hashes = hash_image((PDQ_DIR / rel).read_bytes(), **DECODES[decode])
        halved += hashes.decoded_width < hashes.width
        distance = hamming(hashes.pdq, expected)
        report.append(f"{rel}: distance {distance}, quality {hashes.pdq_quality}, "
                      f"decoded {hashes.decoded_width}x{hashes.decoded_height} of {hashes.width}x{hashes.height}")
        if hashes.pdq_quality >= MIN_QUALITY:
            checked += 1
            if distance > MAX_DISTANCE:
                failures.append(rel)
    details = "\n".join(report)
    assert checked >= MIN_CHECKED, f"only {checked} images reached quality {MIN_QUALITY}:\n{details}"
    assert not failures, f"{decode}: over distance {MAX_DISTANCE} with quality >= {MIN_QUALITY}: {failures}\n{details}"
    assert halved == (8 if DECODES[decode]["reduce"] else 0), "the 8 bridge images (1600x1004) take the half-size path"


def imagehash_rows() -> list[dict[str, str]]:
    with (IMAGEHASH_DIR / "expected_hashes_from_upstream_tests.csv").open(newline="") as f:
        return [row for row in csv.DictReader(f) if row["algorithm"] in ("phash", "dhash")]


def test_imagehash_rows_present() -> None:
    assert {row["algorithm"] for row in imagehash_rows()} == {"phash", "dhash"}


@pytest.mark.parametrize("row", imagehash_rows(), ids=lambda row: f"{row['file']}-{row['algorithm']}")
def test_phash_dhash_equal_imagehash_upstream(row: dict[str, str]) -> None:
    """Default hash_size=8; imagehash.png is RGBA, which we turn into RGB before imagehash's convert('L')."""
    assert row["condition"] == "default hash_size=8", f"unexpected condition {row['condition']!r}"
    data = (IMAGEHASH_DIR / row["file"]).read_bytes()
    image: ImageHashes = hash_image(data)
    media = hash_media(data)
    algorithm = row["algorithm"]
    assert getattr(image, algorithm) == row["expected_hex"], f"hash_image {algorithm} of {row['file']}"
    assert getattr(media, algorithm) == row["expected_hex"], f"hash_media {algorithm} of {row['file']}"
