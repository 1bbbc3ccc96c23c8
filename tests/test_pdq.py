"""Our PDQ (processing/hashing/pdq.py) against the pdqhash binding, and what the reduced decode costs.

At full size the two must agree bit for bit, quality included: same windows, box edges, sample
positions, DCT and median. On a half-size JPEG decode ours applies the full image's filter, so it
must land next to the full decode's hash, where the binding fed the half-size array does not.
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

from processing.hashing.pdq import pdq_dihedral, pdq_of, sampling_matrix
from tests.robustness import hamming, natural_images, pdqhash_hex

PHOTOS = 24


def binding(rgb: np.ndarray) -> tuple[str, int]:
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return pdqhash_hex(bits), int(quality)


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    """Benign generated 1280x960 photos, stored as JPEG quality 92 like the recall set."""
    out = []
    for image in natural_images(PHOTOS, seed=31):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=92)
        out.append(buffer.getvalue())
    return out


def decode(data: bytes, halve: bool, mode: str = "RGB") -> tuple[np.ndarray, tuple[int, int]]:
    image = Image.open(io.BytesIO(data))
    size = image.size
    if halve:
        image.draft(mode, (size[0] // 2, size[1] // 2))
    return np.asarray(image.convert(mode)), size


def test_full_size_hashes_equal_the_binding_bit_for_bit(photos: list[bytes]) -> None:
    for index, data in enumerate(photos):
        rgb, _ = decode(data, halve=False)
        assert pdq_of(rgb) == binding(rgb), f"photo {index}"


@pytest.mark.parametrize("shape", [(1, 1), (4, 100), (5, 5), (64, 64), (63, 65), (64, 200), (129, 257),
                                   (300, 7), (2000, 31), (1004, 1600)])
def test_any_size_hashes_equal_the_binding(shape: tuple[int, int]) -> None:
    """Odd, even, tiny (under 5 px: the all-zero hash), exactly 64 (no blur) and long thin arrays.

    A photo resized to the shape, and noise. Not a flat or band-limited picture (one upscaled from a
    few pixels): there, many DCT coefficients tie with the median at ~0, and their bits are rounding
    noise that no two float summation orders (or two reference ports) share.
    """
    photo = np.asarray(natural_images(1, seed=sum(shape))[0].resize((shape[1], shape[0]), Image.Resampling.LANCZOS))
    noisy = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    for rgb in (photo, noisy):
        assert pdq_of(rgb) == binding(rgb)


def test_dihedral_variants_equal_the_binding(photos: list[bytes]) -> None:
    names = ["original", "rotate90", "rotate180", "rotate270", "flipx", "flipy", "flip_plus1", "flip_minus1"]
    for data in photos[:6]:
        rgb, _ = decode(data, halve=False)
        theirs, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
        ours, our_quality = pdq_dihedral(rgb)
        assert list(ours) == names
        assert list(ours.values()) == [pdqhash_hex(bits) for bits in theirs]
        assert our_quality == quality
        # A real flip of the pixels lands next to the variant (not exactly: even box windows and the
        # sample positions are not symmetric); a wrong variant would be ~128 bits away.
        assert hamming(pdq_of(np.ascontiguousarray(rgb[::-1]))[0], ours["flipx"]) <= 16


def test_half_size_decode_hashes_like_the_full_image(photos: list[bytes]) -> None:
    ours, ours_luma_only, binding_on_half = [], [], []
    for data in photos:
        full, size = decode(data, halve=False)
        half, _ = decode(data, halve=True)
        half_luma, _ = decode(data, halve=True, mode="L")  # production's path: JPEG's Y channel alone
        assert half.shape[:2] == half_luma.shape == (size[1] // 2, size[0] // 2)
        reference, _ = binding(full)
        ours.append(hamming(pdq_of(half, size)[0], reference))
        ours_luma_only.append(hamming(pdq_of(half_luma, size)[0], reference))
        binding_on_half.append(hamming(binding(half)[0], reference))
    summary = f"ours {ours}, ours on Y alone {ours_luma_only}, binding on the half-size array {binding_on_half}"
    assert statistics.mean(ours) <= 1.0 and max(ours) <= 6, summary
    assert statistics.mean(ours_luma_only) <= 1.5 and max(ours_luma_only) <= 6, summary
    # The reason for our own PDQ: the narrower filter of a plain half-size hash moves it several bits.
    assert statistics.mean(binding_on_half) >= 3 * max(statistics.mean(ours), 0.5), summary


@pytest.mark.parametrize("full, decoded", [(1280, None), (1004, None), (64, None), (17, None), (1280, 640),
                                           (1005, 503), (1600, 400), (9000, 1500)])
def test_sampling_weights_sum_to_one(full: int, decoded: int | None) -> None:
    """A blur keeps a flat picture flat: each of the 64 samples is a weighted mean, reduced or not."""
    matrix = sampling_matrix(full, decoded)
    assert matrix.shape == (64, decoded or full)
    assert np.allclose(matrix.sum(axis=1), 1.0, atol=1e-5)
    assert (matrix >= 0).all()


def test_production_hashing_does_not_need_the_pdqhash_binding(photos: list[bytes], tmp_path) -> None:
    """pdqhash is a test and benchmark reference only (the [dev] extra): hashing works with it blocked."""
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(photos[0])
    script = ("import sys; sys.modules['pdqhash'] = None\n"  # any `import pdqhash` now raises ImportError
              "from processing.hashing import hash_media\n"
              f"result = hash_media(open({str(photo)!r}, 'rb').read())\n"
              "print(result.status, result.pdq, result.pdq_quality)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    full, _ = decode(photos[0], halve=False)
    reference, reference_quality = binding(full)
    status, pdq_hex, quality = done.stdout.split()
    assert status == "hashed" and abs(int(quality) - reference_quality) <= 2
    assert hamming(pdq_hex, reference) <= 6
