"""PDQ (Meta's perceptual hash) as matrix products, so a reduced decode can hash like the full image.

PDQ blurs the luma image with two passes of Jarosz box filters per axis, keeps 64x64 samples, takes
the 16x16 low-frequency DCT and sets each bit by comparing with the median. Everything before the
median is linear, so for an image of a given size it is `A_rows @ luma @ A_cols.T` with two fixed
64-row matrices. Building them once per size gives two things the `pdqhash` binding cannot:

* **A reduced JPEG decode that still hashes as the full image.** A pixel of a 1/2-scale decode stands
  for a 2x2 block of the original, so the full-size matrix with its weights summed over each block
  applies the full image's filter to the reduced pixels. Feeding the reduced image to `pdqhash`
  instead narrows the filter windows and moved the hash up to 12 bits from Meta's C++ reference on its
  own test images (over the accepted 10); this way it stays within the full decode's distance.
* **Speed.** Two small matrix products replace the binding's float64 luma and four full-image
  passes, about 3x faster on a full-size image.

The arithmetic follows Meta's C++ (`pdq/cpp/hashing/pdqhashing.cpp`, `downscaling.cpp`): the same
window sizes, box edges, sample positions, DCT basis, quality metric and median. Tests check it bit
for bit against `pdqhash` on Meta's reference images and on generated photos.
"""

from __future__ import annotations

import functools

import numpy as np
from threadpoolctl import threadpool_limits

HASH_SIDE = 64  # PDQ's downsample is 64x64
MIN_HASHABLE_SIDE = 5  # the C++ reference hashes smaller images as all zeros with quality 0
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _dct_basis() -> np.ndarray:
    """DCT-II rows 1..16 of 64 (the DC row is skipped), scaled by sqrt(2/64), as the reference has it."""
    rows = np.arange(1, 17)[:, None]
    cols = np.arange(HASH_SIDE)[None, :]
    return (np.sqrt(2.0 / HASH_SIDE) * np.cos(np.pi / 2.0 / HASH_SIDE * rows * (2 * cols + 1))).astype(np.float32)


_DCT = _dct_basis()


def _box_edges(length: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last input index each output of the reference's `box1DFloat` averages.

    Output o averages in[o - (window - half) .. o + half - 1] with half = (window + 2) // 2, clipped
    to the vector: centred for odd windows, one further right for even ones.
    """
    half = (window + 2) // 2
    out = np.arange(length)
    return np.clip(out - (window - half), 0, length - 1), np.clip(out + half - 1, 0, length - 1)


def _box_after(rows: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """`rows @ B` for the box operator B (B[k, first[k]..last[k]] = 1/count), without building B.

    Column j of the result sums rows[:, k] / count[k] over the k whose window covers j. Windows move
    right monotonically, so those k form a range found with two searchsorted calls on a running sum.
    """
    weighted = rows / (last - first + 1)
    running = np.concatenate([np.zeros((rows.shape[0], 1)), np.cumsum(weighted, axis=1)], axis=1)
    columns = np.arange(rows.shape[1])
    opened = np.searchsorted(first, columns, side="right")  # windows that start at or before j
    closed = np.searchsorted(last, columns, side="left")  # windows that end before j
    return running[:, opened] - running[:, closed]


@functools.lru_cache(maxsize=512)
def sampling_matrix(full_length: int, decoded_length: int | None = None) -> np.ndarray:
    """The 64 x decoded_length matrix from one axis of the decoded image to PDQ's 64 samples.

    It is the full-size image's operator (two box passes, then the reference's sample positions);
    when the image was decoded smaller, each decoded pixel gets the summed weights of the block of
    full-size pixels it stands for. Cached: photos come in a handful of sizes.
    """
    decoded_length = decoded_length or full_length
    window = (full_length + 2 * HASH_SIDE - 1) // (2 * HASH_SIDE)
    first, last = _box_edges(full_length, window)
    samples = ((np.arange(HASH_SIDE) + 0.5) * full_length / HASH_SIDE).astype(int)
    operator = np.zeros((HASH_SIDE, full_length))
    operator[np.arange(HASH_SIDE), samples] = 1.0
    for _ in range(2):  # PDQ_NUM_JAROSZ_XY_PASSES
        operator = _box_after(operator, first, last)
    if decoded_length != full_length:
        block = max(1, round(full_length / decoded_length))
        starts = np.minimum(np.arange(decoded_length) * block, full_length - 1)
        operator = np.add.reduceat(operator, starts, axis=1)
    return np.ascontiguousarray(operator, dtype=np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Float luma (0.299 R + 0.587 G + 0.114 B) of an RGB uint8 array, as the reference computes it."""
    rows, cols = rgb.shape[:2]
    return (rgb.reshape(-1, 3).astype(np.float32) @ LUMA).reshape(rows, cols)  # fewer temporaries than per channel


def _quality(samples: np.ndarray) -> int:
    """The reference's quality: truncated gradient steps in percent of 255, summed, / 90, at most 100."""
    vertical = np.trunc((samples[:-1, :] - samples[1:, :]) * 100 / 255)
    horizontal = np.trunc((samples[:, :-1] - samples[:, 1:]) * 100 / 255)
    return min(int(np.abs(vertical).sum() + np.abs(horizontal).sum()) // 90, 100)


@functools.cache
def _one_blas_thread() -> None:
    """Run this process's BLAS on one thread, once. Our products are small (64 x 480 x 640); OpenBLAS's
    extra threads spin while idle, so one hashing worker burnt two cores' CPU, and two workers on two
    cores ran slower than one (measured with bench/bench_hash.py)."""
    threadpool_limits(limits=1, user_api="blas")


def pdq_dct(pixels: np.ndarray, full_size: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """The 16x16 DCT PDQ thresholds, and the quality, of an RGB (rows x cols x 3) or luma array.

    A 2-D array is luma already, used as is (the reference's fillFloatLumaFromGrey). `full_size` is
    (width, height) of the image before a reduced decode; the hash then estimates the full-size
    image's hash. None means the array is the full image.
    """
    _one_blas_thread()
    rows, cols = pixels.shape[:2]
    full_cols, full_rows = full_size or (cols, rows)
    if full_rows < MIN_HASHABLE_SIDE or full_cols < MIN_HASHABLE_SIDE:
        return np.zeros((16, 16), np.float32), 0
    along_rows, along_cols = sampling_matrix(full_rows, rows), sampling_matrix(full_cols, cols)
    plane = pixels.astype(np.float32) if pixels.ndim == 2 else luma(pixels)
    samples = along_rows @ plane @ along_cols.T
    return _DCT @ samples @ _DCT.T, _quality(samples)


def hex_of_dct(dct: np.ndarray) -> str:
    """Bits above the (lower) median, as the 64 hex digits hash lists use: bit 255 first, bit 0 last.

    The reference sets bit i*16+j for dct[i][j] and prints the 16-bit words from the highest.
    """
    flat = dct.ravel()
    median = np.partition(flat, 127)[127]  # Torben's median of 256 values is the 128th smallest
    return np.packbits((flat > median)[::-1].astype(np.uint8)).tobytes().hex()


def pdq_of(pixels: np.ndarray, full_size: tuple[int, int] | None = None) -> tuple[str, int]:
    """(PDQ hex, quality 0-100) of an RGB or luma uint8 array; see `pdq_dct`."""
    dct, quality = pdq_dct(pixels, full_size)
    return hex_of_dct(dct), quality  # an unhashable (all-zero) DCT gives the reference's all-zero hash


# The 8 rotations/flips, from the DCT alone (the reference's dct16OriginalTo*): whether the result is
# transposed, and which coefficients change sign, as a function of row i and column j.
_DIHEDRAL_SIGNS = {
    "original": (False, lambda i, j: np.zeros_like(i, bool)),
    "rotate90": (True, lambda i, j: j % 2 == 0),
    "rotate180": (False, lambda i, j: (i + j) % 2 == 1),
    "rotate270": (True, lambda i, j: i % 2 == 0),
    "flipx": (False, lambda i, j: i % 2 == 0),
    "flipy": (False, lambda i, j: j % 2 == 0),
    "flip_plus1": (True, lambda i, j: np.zeros_like(i, bool)),
    "flip_minus1": (True, lambda i, j: (i + j) % 2 == 1),
}


def pdq_dihedral(pixels: np.ndarray, full_size: tuple[int, int] | None = None) -> tuple[dict[str, str], int]:
    """PDQ of the image's 8 rotations and flips (to catch a flipped re-post), and the quality."""
    dct, quality = pdq_dct(pixels, full_size)
    i, j = np.indices(dct.shape)
    variants = {}
    for name, (transpose, negate) in _DIHEDRAL_SIGNS.items():
        signed = np.where(negate(i, j), -dct, dct)
        variants[name] = hex_of_dct(signed.T if transpose else signed)
    return variants, quality
