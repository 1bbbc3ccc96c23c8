"""The generated demo export: deterministic, tdesktop-shaped, complete and self-contained."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from chanwatch.demo_data import DEMO_CHANNEL_ID, DEMO_TITLE, build_demo_export

PLACEHOLDER_PHOTO = "(File not included. Change data exporting settings to download.)"
PLACEHOLDER_FILE = "(File exceeds maximum size. Change data exporting settings to download.)"
# Must match the table in chanwatch/demo_data.py's docstring (seed=7, messages=300).
RECURRENCES = {8: [98, 145, 153], 15: [129, 190], 20: [94, 115], 90: [107, 111, 224],
               103: [208, 265, 268], 234: [245, 302]}
# tdesktop's key order for a non-service message (optional keys may be missing).
MESSAGE_KEYS = ["id", "type", "date", "date_unixtime", "edited", "edited_unixtime", "from", "from_id",
                "author", "forwarded_from", "reply_to_message_id", "photo", "photo_file_size", "file",
                "file_name", "file_size", "thumbnail", "thumbnail_file_size", "media_type", "sticker_emoji",
                "mime_type", "duration_seconds", "width", "height", "text", "text_entities", "reactions"]
LOCAL = dt.timezone(dt.timedelta(hours=2))


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One default build shared by the read-only tests (a build takes a few seconds)."""
    out = tmp_path_factory.mktemp("demo")
    build_demo_export(out)
    return out


@pytest.fixture(scope="module")
def messages(export_dir: Path) -> list[dict[str, Any]]:
    return json.loads((export_dir / "result.json").read_text(encoding="utf-8"))["messages"]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _media_paths(msg: dict[str, Any]) -> list[str]:
    """Paths of files that were included (placeholders start with '(')."""
    return [msg[k] for k in ("photo", "file", "thumbnail") if k in msg and not msg[k].startswith("(")]


def test_same_seed_gives_byte_identical_files(export_dir: Path, tmp_path: Path) -> None:
    build_demo_export(tmp_path / "again")
    first, second = _files(export_dir), _files(tmp_path / "again")
    assert sorted(first) == sorted(second)
    for rel, data in first.items():
        assert second[rel] == data, rel


def test_result_json_is_tdesktop_shaped(export_dir: Path, messages: list[dict[str, Any]]) -> None:
    raw = (export_dir / "result.json").read_bytes()
    doc = json.loads(raw)
    assert list(doc) == ["name", "type", "id", "messages"]
    assert (doc["name"], doc["type"], doc["id"]) == (DEMO_TITLE, "public_channel", DEMO_CHANNEL_ID)
    assert raw == json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
    first = messages[0]
    assert first == {
        "id": 1, "type": "service", "date": first["date"], "date_unixtime": first["date_unixtime"],
        "actor": DEMO_TITLE, "actor_id": f"channel{DEMO_CHANNEL_ID}", "action": "create_channel",
        "title": DEMO_TITLE, "text": "", "text_entities": []}
    assert len(messages) == 300


def test_messages_follow_tdesktop_conventions(messages: list[dict[str, Any]]) -> None:
    ids = [m["id"] for m in messages]
    assert ids == sorted(set(ids))
    for msg in messages[1:]:
        keys = list(msg)
        assert keys == [k for k in MESSAGE_KEYS if k in msg], msg["id"]
        assert msg["type"] == "message" and msg["from_id"] == f"channel{DEMO_CHANNEL_ID}"
    for msg in messages:
        local = dt.datetime.fromtimestamp(int(msg["date_unixtime"]), LOCAL).replace(tzinfo=None)
        assert msg["date"] == local.isoformat()
        _check_text(msg["text"], msg["text_entities"])


def _check_text(text: str | list[Any], entities: list[dict[str, str]]) -> None:
    """`text` is a string or a mixed list; `text_entities` holds the same pieces as objects."""
    assert all(set(e) <= {"type", "text", "href"} and ("href" in e) == (e["type"] == "text_link")
               for e in entities)
    if isinstance(text, str):
        assert (entities == [] and text == "") or entities == [{"type": "plain", "text": text}]
    else:
        pieces = [p if isinstance(p, str) else p["text"] for p in text]
        assert pieces == [e["text"] for e in entities]
        assert all(isinstance(p, dict) for p, e in zip(text, entities, strict=True) if e["type"] != "plain")


def test_export_contains_every_feature(messages: list[dict[str, Any]]) -> None:
    photos = [m for m in messages if "photo" in m and not m["photo"].startswith("(")]
    by_type: dict[str, int] = {}
    for m in messages:
        if "file" in m and not m["file"].startswith("("):
            by_type[m.get("media_type", "document")] = by_type.get(m.get("media_type", "document"), 0) + 1
    assert len(photos) >= 40
    assert by_type["video_file"] >= 2 and by_type["animation"] == 1 and by_type["sticker"] >= 1
    assert by_type["document"] >= 1
    assert {m["forwarded_from"] for m in messages if "forwarded_from" in m} >= {
        "Alpine Light Collective", "Harbour Street Frames", "Morning Fog Archive"}
    assert sum("reactions" in m for m in messages) >= 20
    assert any(r["type"] == "custom_emoji" for m in messages for r in m.get("reactions", []))
    assert any(m.get("photo") == PLACEHOLDER_PHOTO for m in messages)
    assert any(m.get("file") == PLACEHOLDER_FILE for m in messages)
    assert any("author" in m for m in messages)
    assert any(e["type"] in ("link", "text_link") for m in messages for e in m["text_entities"])
    assert any(e["type"] == "mention" for m in messages for e in m["text_entities"])


def test_replies_and_edits_are_consistent(messages: list[dict[str, Any]]) -> None:
    seen: set[int] = set()
    replies = edits = 0
    for m in messages:
        if "reply_to_message_id" in m:
            assert m["reply_to_message_id"] in seen
            replies += 1
        if "edited" in m:
            assert int(m["edited_unixtime"]) > int(m["date_unixtime"])
            edits += 1
        seen.add(m["id"])
    assert replies >= 3 and edits >= 3


def test_albums_share_a_date_and_one_caption(messages: list[dict[str, Any]]) -> None:
    photos = [m for m in messages if "photo" in m]
    runs: list[list[dict[str, Any]]] = []
    for m in photos:
        if runs and runs[-1][-1]["date"] == m["date"] and runs[-1][-1]["id"] + 1 == m["id"]:
            runs[-1].append(m)
        else:
            runs.append([m])
    albums = [r for r in runs if len(r) > 1]
    assert len(albums) >= 3 and all(3 <= len(a) <= 4 for a in albums)
    assert all(a[0]["text"] != "" and all(m["text"] == "" for m in a[1:]) for a in albums)


def test_every_media_path_exists_inside_the_export(export_dir: Path, messages: list[dict[str, Any]]) -> None:
    root = export_dir.resolve()
    for msg in messages:
        for rel in _media_paths(msg):
            path = (export_dir / rel).resolve()
            assert path.is_relative_to(root) and path.is_file(), rel
        if "photo" in msg and not msg["photo"].startswith("("):
            assert (export_dir / msg["photo"]).stat().st_size == msg["photo_file_size"]
            with Image.open(export_dir / msg["photo"]) as img:
                assert img.size == (msg["width"], msg["height"])
        if "file" in msg and not msg["file"].startswith("("):
            assert (export_dir / msg["file"]).stat().st_size == msg["file_size"]


def test_second_build_leaves_files_untouched(export_dir: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in export_dir.rglob("*") if p.is_file()}
    build_demo_export(export_dir)
    after = {p: p.stat().st_mtime_ns for p in export_dir.rglob("*") if p.is_file()}
    assert after == before


def test_images_are_not_flat(export_dir: Path) -> None:
    images = sorted((export_dir / "photos").glob("*.jpg")) + sorted(export_dir.rglob("*_thumb.jpg"))
    assert len(images) >= 40
    for path in images:
        with Image.open(path) as img:
            assert np.asarray(img.convert("RGB"), dtype=np.float32).std() > 10, path.name


def _small(path: Path) -> np.ndarray:
    """A 16x16 grey thumbnail: tolerant of re-encoding, resizing, a 5% crop and a small watermark."""
    with Image.open(path) as img:
        return np.asarray(img.convert("L").resize((16, 16), Image.Resampling.BOX), dtype=np.float32)


def test_documented_reposts_resemble_their_originals(export_dir: Path,
                                                     messages: list[dict[str, Any]]) -> None:
    by_id = {m["id"]: m for m in messages}
    photos = {m["id"]: _small(export_dir / m["photo"]) for m in messages
              if "photo" in m and not m["photo"].startswith("(")}
    for oid, reposts in RECURRENCES.items():
        for rid in reposts:
            own = np.abs(photos[rid] - photos[oid]).mean()
            unrelated = min(np.abs(photos[rid] - img).mean() for pid, img in photos.items()
                            if pid not in (oid, *reposts))
            assert own < 0.75 * unrelated, (oid, rid, own, unrelated)
    pairs = [(by_id[o], by_id[r]) for o, rs in RECURRENCES.items() for r in rs]
    assert any(r["width"] * 2 == o["width"] for o, r in pairs)  # a half-size re-post
    assert any((export_dir / r["photo"]).read_bytes() == (export_dir / o["photo"]).read_bytes()
               for o, r in pairs)  # a byte-identical forward


def test_videos_decode_and_move(export_dir: Path, messages: list[dict[str, Any]]) -> None:
    videos = [m for m in messages if m.get("media_type") in ("video_file", "animation")
              and not m["file"].startswith("(")]
    for msg in videos:
        with av.open(str(export_dir / msg["file"])) as container:
            frames = [f.to_ndarray(format="gray").astype(np.float32) for f in container.decode(video=0)]
        assert (frames[0].shape[1], frames[0].shape[0]) == (msg["width"], msg["height"])
        assert 20 <= len(frames) <= 4 * 15
        assert max(np.abs(frames[0] - f).mean() for f in frames) > 2  # something moves


def test_too_few_messages_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="messages must be"):
        build_demo_export(tmp_path, messages=50)
    assert not any(tmp_path.iterdir())
