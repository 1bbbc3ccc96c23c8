"""`chanwatch match` on a collected channel: matches, idempotent re-runs, retro-hunts, and crashes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from processing.hashing import hash_media
from tests.conftest import Workspace
from tests.exports import export_doc, message, write_export
from tests.robustness import TRANSFORMS, jpeg_bytes, natural_images, reencode_video, synthetic_video


@pytest.fixture(scope="module")
def media_files() -> dict[str, bytes]:
    images = [jpeg_bytes(image, 92) for image in natural_images(4, seed=21, size=(640, 480))]
    picture = Image.open(io.BytesIO(images[0])).convert("RGB")
    video = synthetic_video(3)
    return {
        "photos/original0.jpg": images[0],
        "photos/resized0.jpg": TRANSFORMS["resize_50"](picture),
        "photos/image1.jpg": images[1],
        "photos/image2.jpg": images[2],
        "photos/flat.jpg": jpeg_bytes(Image.new("RGB", (320, 240), (128, 128, 128))),
        "video_files/clip.mp4": video,
        "video_files/clip-reencoded.mp4": reencode_video(video, (256, 192), 300_000),
        "video_files/other.mp4": synthetic_video(4),
    }


def collect(ws: Workspace, media_files: dict[str, bytes]) -> None:
    folder = ws.root / "export"
    messages = []
    for message_id, (path, data) in enumerate(media_files.items(), start=1):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
        if path.startswith("photos/"):
            with Image.open(io.BytesIO(data)) as image:
                messages.append(message(message_id, text="", photo=path, photo_file_size=len(data),
                                        width=image.width, height=image.height))
        else:
            messages.append(message(message_id, text="", file=path, file_size=len(data), media_type="video_file",
                                    mime_type="video/mp4", duration_seconds=6, width=320, height=240))
    write_export(folder, export_doc(messages))
    ws.run("import-export", str(folder), check=True)


def write_list(ws: Workspace, name: str, lines: list[str]) -> Path:
    path = ws.root / name
    path.write_text("signal_type,signal_str,collab,category,tags\n" + "".join(f"{line}\n" for line in lines))
    return path


def matches(ws: Workspace) -> list[dict]:
    files = sorted((ws.storage / "matches").rglob("*.parquet"))
    rows = [r for f in files for r in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: (r["message_id"], r["signal_type"], r["entry_id"]))


def vpdq_signal(data: bytes) -> str:
    frames = hash_media(data).frames
    features = ", ".join(f'""{f["pdq"]},{f["quality"]},{f["ts"]:.3f}""' for f in frames)
    return f'vpdq,"[{features}]",demo,ncii,'


def test_match_retro_hunt_rollback_and_idempotence(ws: Workspace, media_files: dict[str, bytes]) -> None:
    collect(ws, media_files)
    original = hash_media(media_files["photos/original0.jpg"])
    image1 = hash_media(media_files["photos/image1.jpg"])
    v1 = write_list(ws, "v1.csv", [f"pdq,{original.pdq},hotline,ncii,"])
    ws.run("hashlist", "import", str(v1), "--name", "hotline", "--category", "ncii", check=True)
    first = ws.run("match", check=True).stdout
    found = matches(ws)
    assert [(m["message_id"], m["signal_type"]) for m in found] == [(1, "pdq"), (2, "pdq")]
    assert found[0]["distance"] == 0 and 0 < found[1]["distance"] <= 31
    assert found[0]["message_url"] == "https://t.me/test_channel/1"
    assert (found[0]["list_name"], found[0]["list_version"], found[0]["category"]) == ("hotline", 1, "ncii")
    assert found[0]["entry_id"] == original.pdq and found[0]["threshold"] == 31
    assert "PDQ below quality" in first and "2 new" in first

    again = ws.run("match", check=True).stdout
    assert "0 searched" in again and "0 new" in again
    assert matches(ws) == found

    # v2 adds image 1 (PDQ and MD5) and the video: old posts are found, only against the new entries.
    v2 = write_list(ws, "v2.csv", [f"pdq,{original.pdq},hotline,ncii,", f"pdq,{image1.pdq},hotline,ncii,",
                                   f"md5,{image1.md5},hotline,ncii,", vpdq_signal(media_files["video_files/clip.mp4"])])
    ws.run("hashlist", "import", str(v2), "--name", "hotline", "--category", "ncii", check=True)
    retro = ws.run("match", check=True).stdout
    assert "0 searched in full" in retro and "8 against new entries only" in retro
    after = matches(ws)
    assert [(m["message_id"], m["signal_type"]) for m in after] == [
        (1, "pdq"), (2, "pdq"), (3, "md5"), (3, "pdq"), (6, "vpdq"), (7, "vpdq")]
    assert [m for m in after if m["message_id"] <= 2] == found  # earlier matches untouched
    video = next(m for m in after if m["message_id"] == 7)
    assert video["query_match_percent"] >= 80 and video["distance"] is None and video["list_version"] == 2

    # Rolling back to v1 finds nothing new (v1's entries are all in v2), and nothing is duplicated.
    ws.run("hashlist", "rollback", "hotline", "1", check=True)
    assert "0 new" in ws.run("match", check=True).stdout
    assert matches(ws) == after


def test_a_match_killed_while_committing_is_completed_by_the_next_run(ws: Workspace,
                                                                      media_files: dict[str, bytes]) -> None:
    collect(ws, media_files)
    lines = [f"pdq,{hash_media(media_files[p]).pdq},hotline,ncii," for p in ("photos/original0.jpg",
                                                                            "photos/image2.jpg")]
    ws.run("hashlist", "import", str(write_list(ws, "l.csv", lines)), "--name", "l", "--category", "c", check=True)
    killed = ws.run("match", env={"CHANWATCH_FAULT_INJECT": "stage:1"})
    assert killed.returncode != 0
    assert matches(ws) == []
    ws.run("match", check=True)
    assert [(m["message_id"], m["signal_type"]) for m in matches(ws)] == [(1, "pdq"), (2, "pdq"), (4, "pdq")]
    assert "0 new" in ws.run("match", check=True).stdout


def test_lists_searched_by_worker_processes_give_the_same_matches_and_ledgers(tmp_path: Path,
                                                                            media_files: dict[str, bytes]) -> None:
    """`[matching] workers = 2`: the lists go to two processes; matches and ledgers equal a one-process run."""
    from storage.match_state import read_ledger
    from storage.store import Store
    from tests.exports import write_config

    original = hash_media(media_files["photos/original0.jpg"])
    image1, image2 = hash_media(media_files["photos/image1.jpg"]), hash_media(media_files["photos/image2.jpg"])
    lists = {"hotline": [f"pdq,{original.pdq},hotline,ncii,", f"md5,{image1.md5},hotline,ncii,"],
             "partner": [f"pdq,{image2.pdq},partner,ncii,", vpdq_signal(media_files["video_files/clip.mp4"])],
             "empty_hit": [f"md5,{'0' * 32},partner,ncii,"]}
    runs = {}
    for workers in ("1", "2"):
        (tmp_path / workers / "tmp").mkdir(parents=True)
        ws = Workspace(tmp_path / workers, tmp_path / workers / "data",
                       write_config(tmp_path / workers / "chanwatch.toml", tmp_path / workers / "data"))
        collect(ws, media_files)
        for name, lines in lists.items():
            ws.run("hashlist", "import", str(write_list(ws, f"{name}.csv", lines)), "--name", name, "--category",
                   "ncii", check=True)
        done = ws.run("match", check=True, env={"CHANWATCH_MATCHING_WORKERS": workers}, timeout=600)
        store = Store(str(ws.storage))
        report = max((ws.storage / "_state" / "runs").glob("match-*.json")).read_text()
        runs[workers] = {
            "matches": [{k: v for k, v in m.items() if k not in ("matched_at", "run_id")} for m in matches(ws)],
            "ledgers": {n: read_ledger(store, n).to_pylist() for n in lists},
            "stdout": done.stdout, "stderr": done.stderr, "report": json.loads(report)}
    one, two = runs["1"], runs["2"]
    assert [(m["message_id"], m["list_name"], m["signal_type"]) for m in two["matches"]] == [
        (1, "hotline", "pdq"), (2, "hotline", "pdq"), (3, "hotline", "md5"), (4, "partner", "pdq"),
        (6, "partner", "vpdq"), (7, "partner", "vpdq")]
    assert two["matches"] == one["matches"]
    assert two["ledgers"] == one["ledgers"] and all(two["ledgers"][n] for n in lists)
    assert two["report"]["per_list"] == one["report"]["per_list"]
    assert two["report"]["counts"] == one["report"]["counts"]
    assert "6 new" in two["stdout"] and "6 new" in one["stdout"]
    assert "lists=3 workers=2" in two["stderr"] and "workers=" not in one["stderr"]
