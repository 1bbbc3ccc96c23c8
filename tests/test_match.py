"""`chanwatch match` on a collected channel: matches, idempotent re-runs, retro-hunts, and crashes."""

from __future__ import annotations

import io
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
