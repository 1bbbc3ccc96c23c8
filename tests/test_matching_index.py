"""The indexes return exactly what brute force returns: same pairs, same distances, at every threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from processing.hashing.vpdq import vpdq_match
from processing.hashlists.parse import parse_hash_list
from processing.matching.binary_index import FlatIndex, brute_force, build_index, pairs_within, search
from processing.matching.exact_index import ExactIndex
from processing.matching.mih import MultiIndexHash, chunk_widths, probe_radius
from processing.matching.vpdq_index import VpdqIndex, VpdqRules

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def clustered_bank(rng: np.random.Generator, n: int, n_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes in clusters (as real banks are: near-duplicates of one picture), and queries near them."""
    centres = rng.integers(0, 256, size=(max(1, n // 20), n_bytes), dtype=np.uint8)
    codes = centres[rng.integers(0, len(centres), n)].copy()
    flip_bits(rng, codes, rng.integers(0, n_bytes * 2, n))
    queries = codes[rng.integers(0, n, 300)].copy()
    flip_bits(rng, queries, rng.integers(0, n_bytes * 8 // 4, len(queries)))
    queries = np.concatenate([queries, rng.integers(0, 256, size=(100, n_bytes), dtype=np.uint8)])
    return codes, queries


def flip_bits(rng: np.random.Generator, codes: np.ndarray, counts: np.ndarray) -> None:
    bits = codes.shape[1] * 8
    for row, k in enumerate(counts):
        for bit in rng.choice(bits, int(k), replace=False):
            codes[row, bit // 8] ^= np.uint8(1 << (7 - bit % 8))


def triples(result: tuple[np.ndarray, np.ndarray, np.ndarray]) -> set[tuple[int, int, int]]:
    return set(zip(*(a.tolist() for a in result), strict=True))


@pytest.mark.parametrize(("n", "n_bytes", "thresholds"), [
    (60_000, 32, (0, 10, 31, 45)),
    (3_000, 32, (31,)),
    (80_000, 8, (0, 8, 12)),
])
def test_multi_index_hash_equals_brute_force(n: int, n_bytes: int, thresholds: tuple[int, ...]) -> None:
    rng = np.random.default_rng(n + n_bytes)
    codes, queries = clustered_bank(rng, n, n_bytes)
    index = MultiIndexHash.build(codes)
    for threshold in thresholds:
        expected = triples(brute_force(codes, queries, threshold))
        got = search(index, queries, threshold)
        assert triples(got) == expected, f"threshold {threshold}"
        assert len(got[0]) == len(expected), "each pair is returned once"
        assert triples(FlatIndex(codes).search(queries, threshold)) == expected
    assert expected, "the test bank must produce matches to compare"


def test_index_kind_follows_bank_size_and_radius_stays_small() -> None:
    small = np.zeros((10, 32), np.uint8)
    assert build_index(small, flat_max=50_000).kind == "flat"
    assert build_index(np.random.default_rng(0).integers(0, 256, (70_000, 32), dtype=np.uint8),
                       flat_max=50_000).kind == "mih"
    widths = chunk_widths(256, 10_000_000)
    assert sum(widths) == 256 and max(widths) <= 24
    assert probe_radius(31, len(widths)) == 2  # 11 chunks: some chunk of any match within 31 differs by <= 2


def test_pairs_within_indexes_either_side() -> None:
    rng = np.random.default_rng(5)
    codes, queries = clustered_bank(rng, 2_000, 32)
    expected = triples(brute_force(codes, queries, 31))
    assert triples(pairs_within(queries, codes, 31)) == {(q, c, d) for q, c, d in expected}
    swapped = pairs_within(codes, queries, 31)
    assert {(q, c, d) for c, q, d in triples(swapped)} == expected


def test_exact_index_finds_equal_hashes_only() -> None:
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, (5_000, 16), dtype=np.uint8)
    codes[7, -3:] = 0  # trailing NUL bytes must not confuse the byte-string comparison
    index = ExactIndex.from_arrays(ExactIndex.build(codes).arrays())
    queries = np.concatenate([codes[[7, 42]], rng.integers(0, 256, (3, 16), dtype=np.uint8)])
    near = codes[7].copy()
    near[-1] = 1
    queries = np.concatenate([queries, near[None, :]])
    q, positions, distances = index.search(queries)
    assert q.tolist() == [0, 1] and positions.tolist() == [7, 42] and distances.tolist() == [0, 0]


def vpdq_samples() -> dict[str, list[dict]]:
    folder = SHARED / "vpdq-sample-hashes"
    if not folder.is_dir():
        pytest.skip(f"shared reference data not found at {folder} (clone the repository beside shared/)")
    samples = {}
    for path in sorted(p for p in folder.glob("*.txt") if p.name != "PROVENANCE.txt"):
        parsed = parse_hash_list(path.read_bytes(), path, category="sample")
        samples[path.stem] = parsed.signals["vpdq"].table["frames"].to_pylist()[0]
    return samples


def test_vpdq_index_agrees_with_pairwise_rules_on_the_reference_videos() -> None:
    samples = vpdq_samples()
    names = sorted(samples)
    index = VpdqIndex.from_arrays(VpdqIndex.build([samples[n] for n in names], quality=50).arrays())
    agreed = 0
    for rules in (VpdqRules(), VpdqRules(query_match_percent=50.0, compared_match_percent=50.0)):
        for query in names:
            hits = {names[h.entry]: h for h in index.match(samples[query], rules)}
            for target in names:
                pair = vpdq_match(samples[query], samples[target])
                expected = pair.is_match(rules.query_match_percent, rules.compared_match_percent or None)
                assert (target in hits) == expected, (query, target, pair)
                if expected:
                    assert hits[target].query_match_percent == pytest.approx(pair.query_match_percent, abs=0.01)
                    assert hits[target].compared_match_percent == pytest.approx(pair.compared_match_percent,
                                                                                abs=0.01)
                    agreed += 1
    assert agreed > len(names)  # more than the self-matches: re-encodes of the chair video match each other
