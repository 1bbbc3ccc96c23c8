"""`chanwatch demo` end to end, as a newcomer runs it: datasets, hints, idempotence, and no media at rest."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.conftest import CLI

# Signatures of image and video formats; any of them in a written file means media bytes at rest.
MAGIC = {
    "jpeg": [b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"\xff\xd8\xff\xdb", b"\xff\xd8\xff\xee"],
    "png": [b"\x89PNG\r\n\x1a\n"],
    "gif": [b"GIF87a", b"GIF89a"],
    "webp": [b"WEBPVP8"],
    "mp4/mov": [b"ftypisom", b"ftypmp42", b"ftypqt", b"ftypM4V", b"ftypavc1", b"ftypiso5", b"ftypdash"],
    "webm/mkv": [b"\x1a\x45\xdf\xa3"],
    "heic": [b"ftypheic", b"ftypmif1"],
    "tiff": [b"II*\x00\x08\x00", b"MM\x00*\x00\x00"],
    "bmp": [b"BM6\x00\x0c\x00"],
}


def find_media_magic(paths: list[Path]) -> list[tuple[Path, str]]:
    found = []
    for path in paths:
        data = path.read_bytes()
        for kind, signatures in MAGIC.items():
            if any(sig in data for sig in signatures):
                found.append((path, kind))
    return found


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run `chanwatch demo` twice in a fresh directory, with its own TMPDIR and a log file."""
    root = tmp_path_factory.mktemp("demo")
    (root / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(root / "tmp"), "COLUMNS": "200"}
    env.pop("CHANWATCH_CONFIG", None)
    for run in ("first", "second"):
        result = subprocess.run([*CLI, "demo"], cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        (root / f"{run}.stdout").write_text(result.stdout)
        (root / f"{run}.log").write_text(result.stderr)
    return root


def test_demo_prints_where_the_data_is_and_queries_that_work(demo_dir: Path) -> None:
    out = (demo_dir / "first.stdout").read_text()
    assert "var/data/" in out
    queries = [line for line in out.splitlines() if line.startswith(("SELECT", "WITH"))]
    assert len(queries) == 3
    for query in queries:
        rows = duckdb.connect().execute(query.replace("var/data", str(demo_dir / "var/data"))).fetchall()
        assert rows, query


def test_demo_fills_the_datasets(demo_dir: Path) -> None:
    root = demo_dir / "var/data"
    con = duckdb.connect()
    messages = con.execute(f"SELECT count(*), count(DISTINCT message_id) FROM "
                           f"read_parquet('{root}/messages/**/*.parquet', hive_partitioning=true)").fetchall()[0]
    assert messages[0] == messages[1] >= 300
    media = dict(con.execute(f"SELECT status, count(*) FROM read_parquet('{root}/media/**/*.parquet', "
                             "hive_partitioning=true) GROUP BY status").fetchall())
    assert media["hashed"] >= 40 and media["skipped"] >= 1
    kinds = {r[0] for r in con.execute(f"SELECT DISTINCT media_kind FROM read_parquet('{root}/media/**/*.parquet',"
                                       " hive_partitioning=true)").fetchall()}
    assert {"photo", "video", "sticker", "animation"} <= kinds
    reposts = con.execute(f"SELECT count(*) FROM (SELECT sha256 FROM read_parquet('{root}/media/**/*.parquet', "
                          "hive_partitioning=true) WHERE sha256 IS NOT NULL GROUP BY 1 HAVING count(*) > 1)"
                          ).fetchall()[0][0]
    assert reposts >= 1


def test_second_demo_changes_no_row(demo_dir: Path) -> None:
    second = (demo_dir / "second.stdout").read_text()
    assert "(0 rows new or changed)" in second
    runs = sorted(p.name.split("-")[0] for p in (demo_dir / "var/data/_state/runs").glob("*.json"))
    assert runs == ["aggregate", "aggregate", "hashlist", "import", "import", "match", "match"]  # list imported once
    assert "hash list demo-known: unchanged" in second
    assert "0 media searched" in second and "(0 new)" in second


def test_demo_ends_by_writing_the_report_and_printing_its_path(demo_dir: Path) -> None:
    for run in ("first", "second"):
        last = (demo_dir / f"{run}.stdout").read_text().strip().splitlines()[-1]
        assert last.startswith("report: ") and "var/report/report.html" in last
    html = (demo_dir / "var/report/report.html").read_text()
    assert html.count("<svg") == 6 and "https://t.me/chanwatch_demo/" in html


def test_demo_list_matches_the_reposts_of_listed_images(demo_dir: Path) -> None:
    """The demo list holds half the base images as first posted; their transformed re-posts are found."""
    import pyarrow.parquet as pq

    first = (demo_dir / "first.stdout").read_text()
    assert "hash list demo-known: imported v1" in first
    rows = [r for f in (demo_dir / "var/data/matches").rglob("*.parquet") for r in pq.read_table(f).to_pylist()]
    by_entry: dict[str, list[int]] = {}
    for row in rows:
        by_entry.setdefault(row["entry_id"], []).append(row["distance"])
    pdq_entries = [e for e in by_entry if not e.endswith("-file")]
    assert len(pdq_entries) == 3
    for entry in pdq_entries:  # the original post at 0, and at least one transformed re-post above 0
        assert 0 in by_entry[entry] and any(0 < d <= 31 for d in by_entry[entry]), (entry, by_entry[entry])
    assert any(e.endswith("-file") for e in by_entry), "the MD5 entry matches the byte-identical post"
    assert all(r["message_url"].startswith("https://t.me/chanwatch_demo/") for r in rows)


def test_no_media_bytes_in_anything_the_demo_wrote(demo_dir: Path) -> None:
    written = [p for p in demo_dir.rglob("*") if p.is_file() and "demo" not in p.relative_to(demo_dir).parts[:2]]
    storage = [p for p in written if "var" in p.parts]
    assert storage, "the demo wrote nothing to scan"
    assert any(p.suffix == ".log" for p in written)
    assert find_media_magic(written) == []
    # and the scanner does see media when it is there
    sample = next((demo_dir / "var/demo/export/photos").glob("*.jpg"))
    assert find_media_magic([sample]) == [(sample, "jpeg")]


def test_no_media_bytes_in_what_the_import_tests_wrote(tmp_path: Path) -> None:
    """Imports of exports full of media leave only hashes behind (storage, temp dir, logs)."""
    from tests.exports import export_doc, message, write_config, write_export
    export = tmp_path / "export"
    (export / "photos").mkdir(parents=True)
    sample = next(Path(__file__).resolve().parents[2].glob("shared/data/pdq-reference-vectors/images/dih/*.jpg"),
                  None)
    data = sample.read_bytes() if sample else b"\xff\xd8\xff\xe0" + os.urandom(2000)
    for i in range(1, 6):
        (export / "photos" / f"p{i}.jpg").write_bytes(data + bytes([i]))
    write_export(export, export_doc([message(i, photo=f"photos/p{i}.jpg") for i in range(1, 6)]))
    config = write_config(tmp_path / "chanwatch.toml", tmp_path / "data")
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    result = subprocess.run([*CLI, "--config", str(config), "-v", "import-export", str(export)], cwd=tmp_path,
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (tmp_path / "run.log").write_text(result.stderr + result.stdout)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "export" not in p.parts]
    assert find_media_magic(written) == []
    stored = duckdb.sql(f"SELECT sha256 FROM read_parquet('{tmp_path}/data/media/**/*.parquet')").fetchall()
    assert {r[0] for r in stored} == {hashlib.sha256(data + bytes([i])).hexdigest() for i in range(1, 6)}


def test_demo_media_carry_perceptual_hashes_and_reruns_reuse_them(demo_dir: Path) -> None:
    import json
    root = demo_dir / "var/data"
    rows = duckdb.sql(f"SELECT media_kind, pdq, pdq_quality, phash, dhash, frames, frame_count FROM "
                      f"read_parquet('{root}/media/**/*.parquet') WHERE status = 'hashed'").fetchall()
    photos = [r for r in rows if r[0] == "photo"]
    videos = [r for r in rows if r[0] == "video"]
    assert photos and all(len(r[1]) == 64 and len(r[3]) == 16 and len(r[4]) == 16 for r in photos)
    assert videos and all(r[5] and r[6] and all(len(f["pdq"]) == 64 for f in r[5]) for r in videos)
    reports = [json.loads(p.read_text()) for p in sorted((root / "_state/runs").glob("import-*.json"))]
    second = max(reports, key=lambda r: r["run_id"])
    assert second["counts"]["media_reused"] == second["counts"]["media_hashed"]  # nothing decoded again


def test_demo_leaves_a_review_queue_that_serve_shows_after_add_user(demo_dir: Path) -> None:
    """The issue's promise: `make demo`, `review add-user`, `review serve`, and the demo's matches are there."""
    import time

    import httpx

    from tests.review_app import csrf_of, free_port

    assert "review queue: 10 new items (11 matches) synced" in (demo_dir / "first.stdout").read_text()
    assert "review queue: 0 new items (0 matches) synced" in (demo_dir / "second.stdout").read_text()
    env = {**os.environ, "TMPDIR": str(demo_dir / "tmp")}
    env.pop("CHANWATCH_CONFIG", None)
    added = subprocess.run([*CLI, "review", "add-user", "lena", "--role", "lead", "--password-stdin"], cwd=demo_dir,
                           env=env, input="a demo lead password\n", capture_output=True, text=True, timeout=120)
    assert added.returncode == 0, added.stderr
    assert "a demo lead password" not in added.stdout + added.stderr
    port = free_port()
    server = subprocess.Popen([*CLI, "review", "serve", "--port", str(port)], cwd=demo_dir, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/login", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "review serve did not start"
                time.sleep(0.3)
        with httpx.Client(base_url=base, follow_redirects=True) as client:
            form = client.get("/login")
            client.post("/login", data={"name": "lena", "password": "a demo lead password",
                                        "csrf_token": csrf_of(form.text)})
            queue = client.get("/queue")
        assert queue.status_code == 200 and 'id="queue-total">10 items' in queue.text
        assert queue.text.count("https://t.me/chanwatch_demo/") == 0  # links live on the evidence pages
        assert "@chanwatch_demo" in queue.text
    finally:
        server.terminate()
        server.wait(10)
