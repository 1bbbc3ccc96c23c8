"""Hash lists end to end through the real CLI: imports of the public reference files, versions,
a malformed list that leaves the previous version in force, and lookups that equal brute force."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from processing.hashing import hash_media
from processing.hashlists.parse import parse_hash_list
from processing.matching.binary_index import brute_force
from processing.matching.codes import hex_to_codes
from tests.conftest import Workspace
from tests.robustness import TRANSFORMS, jpeg_bytes, natural_images

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared(folder: str) -> Path:
    path = SHARED / folder
    if not path.is_dir():
        pytest.skip(f"shared reference data not found at {path} (clone the repository beside shared/)")
    return path


def lookups(ws: Workspace, *queries: str) -> list[dict]:
    result = ws.run("lookup", *queries, check=True)
    return [json.loads(line) for line in result.stdout.splitlines()]


def registry(ws: Workspace) -> list[dict]:
    table = pq.read_table(ws.storage / "hashlist_versions" / "versions.parquet")
    return table.select(["list_name", "list_version", "state", "list_enabled", "entries"]).to_pylist()


def test_public_reference_lists_import_with_auto(ws: Workspace) -> None:
    lists = shared("pdq-hash-lists")
    signals = {"needles.txt": "pdq", "haystack.txt": "pdq", "short256.dat": "pdq", "long256.dat": "pdq",
               "order256.dat": "pdq", "short64.dat": "phash", "long64.dat": "phash",
               "threatexchange_cli_local_file_example.txt": None}
    for file, signal in signals.items():
        args = ["hashlist", "import", str(lists / file), "--name", Path(file).stem, "--category", "reference",
                "--format", "auto"] + (["--signal", signal] if signal else [])
        ws.run(*args, check=True)
    videos = ws.root / "vpdq"
    videos.mkdir()
    for sample in shared("vpdq-sample-hashes").glob("*-*.txt"):
        shutil.copy(sample, videos)
    ws.run("hashlist", "import", str(videos), "--name", "vpdq-samples", "--category", "reference", check=True)
    counts = {r["list_name"]: r["entries"] for r in registry(ws)}
    assert counts == {"needles": 100, "haystack": 1350, "short256": 6, "long256": 50, "order256": 2, "short64": 6,
                      "long64": 667, "threatexchange_cli_local_file_example": 1, "vpdq-samples": 6}
    listing = ws.run("hashlist", "list", check=True).stdout
    assert "vpdq-samples" in listing and "vpdq 6" in listing and "phash 667" in listing


def test_needles_against_haystack_equal_brute_force(ws: Workspace) -> None:
    lists = shared("pdq-hash-lists")
    ws.run("hashlist", "import", str(lists / "haystack.txt"), "--name", "haystack", "--category", "ref",
           "--signal", "pdq", check=True)
    needles = (lists / "needles.txt").read_text().split()
    haystack = (lists / "haystack.txt").read_text().split()
    found = lookups(ws, *(f"pdq:{n}" for n in needles))
    got = {(r["query"].split(":")[1], r["entry_id"], r["distance"]) for r in found}
    q, c, d = brute_force(hex_to_codes(haystack, 32), hex_to_codes(needles, 32), 31)
    expected = {(needles[a], haystack[b], int(dist)) for a, b, dist in zip(q, c, d, strict=True)}
    assert expected, "needles are near-duplicates of haystack entries"
    assert got == expected


def test_malformed_list_is_rejected_and_the_previous_version_stays_active(ws: Workspace) -> None:
    rng = np.random.default_rng(3)
    first, second = ([bytes(row).hex() for row in rng.integers(0, 256, (1000, 32), dtype=np.uint8)] for _ in "12")
    (ws.root / "v1.txt").write_text("".join(f"pdq {h}\n" for h in first))
    ws.run("hashlist", "import", "v1.txt", "--name", "bank", "--category", "c", check=True)
    lines = [f"pdq {h}" for h in second]
    lines[499] = "pdq 12345"  # line 500
    (ws.root / "v2.txt").write_text("\n".join(lines) + "\n")
    result = ws.run("hashlist", "import", "v2.txt", "--name", "bank", "--category", "c")
    assert result.returncode == 2
    assert "v2.txt:500:" in result.stderr and "64 hex digits" in result.stderr
    assert registry(ws) == [{"list_name": "bank", "list_version": 1, "state": "active", "list_enabled": True,
                             "entries": 1000}]
    assert [p.name for p in (ws.storage / "_index" / "hashlists" / "bank").iterdir()] == ["v00001"]
    assert [(r["list_version"], r["distance"]) for r in lookups(ws, f"pdq:{first[7]}")] == [(1, 0)]
    assert lookups(ws, f"pdq:{second[7]}") == []  # nothing of the rejected file is live


def test_versions_rollback_disable_enable(ws: Workspace) -> None:
    a, b = "a" * 64, "5" * 64
    (ws.root / "one.txt").write_text(f"pdq {a}\n")
    (ws.root / "two.txt").write_text(f"pdq {b}\n")
    ws.run("hashlist", "import", "one.txt", "--name", "L", "--category", "c", check=True)
    ws.run("hashlist", "import", "two.txt", "--name", "L", "--category", "c", check=True)
    assert lookups(ws, f"pdq:{a}") == []
    assert [r["list_version"] for r in lookups(ws, f"pdq:{b}")] == [2]
    ws.run("hashlist", "rollback", "L", "1", check=True)
    assert [(r["list_version"], r["distance"]) for r in lookups(ws, f"pdq:{a}")] == [(1, 0)]
    assert [r["state"] for r in registry(ws)] == ["active", "inactive"]
    ws.run("hashlist", "disable", "L", check=True)
    assert lookups(ws, f"pdq:{a}") == []
    ws.run("hashlist", "enable", "L", check=True)
    assert len(lookups(ws, f"pdq:{a}")) == 1
    assert ws.run("hashlist", "rollback", "L", "7").returncode == 2
    assert ws.run("hashlist", "disable", "nope").returncode == 2
    assert ws.run("lookup", "pdq:abc").returncode == 2


def test_held_out_images_lookups_equal_brute_force(ws: Workspace) -> None:
    """Half the images are listed; transformed copies of all are looked up; listed ones only come back."""
    images = natural_images(12, seed=11, size=(640, 480))
    stored = [jpeg_bytes(image, 92) for image in images]
    listed = [hash_media(data).pdq for data in stored[:6]]
    (ws.root / "known.txt").write_text("".join(f"pdq {h}\n" for h in listed))
    ws.run("hashlist", "import", "known.txt", "--name", "known", "--category", "test", check=True)
    queries, owner = [], []
    for i, data in enumerate(stored):
        picture = Image.open(io.BytesIO(data)).convert("RGB")
        for transform in TRANSFORMS.values():
            hashed = hash_media(transform(picture))
            if hashed.pdq_quality and hashed.pdq_quality >= 50:
                queries.append(hashed.pdq)
                owner.append(i)
    got = {(r["query"][4:], r["entry_id"], r["distance"]) for r in lookups(ws, *(f"pdq:{q}" for q in queries))}
    q, c, d = brute_force(hex_to_codes(listed, 32), hex_to_codes(queries, 32), 31)
    expected = {(queries[a], listed[b], int(dist)) for a, b, dist in zip(q, c, d, strict=True)}
    assert got == expected
    found_owners = {owner[queries.index(query)] for query, _, _ in got}
    assert found_owners == set(range(6)), "every listed image is found through some transformed copy"
    assert not any(owner[queries.index(query)] >= 6 for query, _, _ in got), "unlisted images return nothing"
    # A path is hashed first, with the same result as its hash.
    path = ws.root / "copy.jpg"
    path.write_bytes(TRANSFORMS["jpeg_q50"](Image.open(io.BytesIO(stored[0])).convert("RGB")))
    by_path = lookups(ws, str(path))
    assert [(r["query"], r["entry_id"]) for r in by_path] == [(str(path), listed[0])]


def test_bad_lookup_queries_exit_2_with_the_reason(ws: Workspace) -> None:
    result = ws.run("lookup", "md5:" + "0" * 31)
    assert result.returncode == 2 and "32 hex digits" in result.stderr
    result = ws.run("lookup", "nosuch/file.jpg")
    assert result.returncode == 2 and "not a file" in result.stderr


def test_parsed_public_needles_round_trip() -> None:
    path = shared("pdq-hash-lists") / "needles.txt"
    parsed = parse_hash_list(path.read_bytes(), path, signal="pdq", category="x")
    assert parsed.signals["pdq"].table["hash"].to_pylist() == path.read_text().split()
    assert np.array_equal(parsed.signals["pdq"].codes, hex_to_codes(path.read_text().split(), 32))
