"""`chanwatch import-export`: what a Telegram Desktop export becomes in the datasets."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from tests.conftest import Workspace
from tests.exports import CHANNEL_ID, USERNAME, benign_jpeg, export_doc, message, write_export

UTC = dt.UTC


def read(ws: Workspace, dataset: str) -> list[dict]:
    files = sorted((ws.storage / dataset).rglob("*.parquet"))
    if not files:
        return []
    rows = duckdb.sql(f"SELECT * FROM read_parquet('{ws.storage}/{dataset}/**/*.parquet', hive_partitioning=true) "
                      "ORDER BY ALL").fetchall()
    names = [d[0] for d in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{ws.storage}/{dataset}/**/*.parquet',"
                                      " hive_partitioning=true)").fetchall()]
    return [dict(zip(names, row, strict=True)) for row in rows]


def by_id(rows: list[dict]) -> dict[int, dict]:
    return {row["message_id"]: row for row in rows}


def rich_messages(export_dir: Path) -> list[dict]:
    """A new-style export covering the fields researchers rely on, with one real photo file."""
    (export_dir / "photos").mkdir(parents=True)
    photo = benign_jpeg(3)
    (export_dir / "photos" / "p1.jpg").write_bytes(photo)
    return [
        {"id": 1, "type": "service", "date": "2023-11-14T22:14:20", "date_unixtime": str(1_700_000_060),
         "actor": "Test Channel", "actor_id": f"channel{CHANNEL_ID}", "action": "create_channel",
         "title": "Test Channel", "text": "", "text_entities": []},
        message(2, text=["See ", {"type": "link", "text": "https://example.org/a"}, " and ",
                         {"type": "text_link", "text": "this", "href": "https://example.org/b"}, " ",
                         {"type": "hashtag", "text": "#news"}, " by ", {"type": "mention", "text": "@alice"}],
                edited="2023-11-15T10:00:00", edited_unixtime="1700042400", author="Editor",
                reactions=[{"type": "emoji", "count": 5, "emoji": "👍"},
                           {"type": "custom_emoji", "count": 2, "document_id": "5368324170671202286"}]),
        message(3, text="A photo", photo="photos/p1.jpg", photo_file_size=len(photo), width=640, height=480),
        message(4, text="a reply", reply_to_message_id=2, forwarded_from="Other Channel"),
        message(5, text="", photo="(File not included. Change data exporting settings to download.)",
                photo_file_size=1234, width=1280, height=960),
        message(6, text="clip", file="(File exceeds maximum size. Change data exporting settings to download.)",
                file_size=3_000_000_000, media_type="video_file", mime_type="video/mp4", duration_seconds=12),
    ]


def test_new_style_export_becomes_rows(ws: Workspace) -> None:
    export = ws.root / "export"
    path = write_export(export, export_doc(rich_messages(export)))
    result = ws.run("import-export", str(export), check=True)
    assert "imported 6 messages" in result.stdout

    messages = by_id(read(ws, "messages"))
    assert sorted(messages) == [1, 2, 3, 4, 5, 6]
    m2 = messages[2]
    assert m2["channel_id"] == CHANNEL_ID
    assert m2["text"] == "See https://example.org/a and this #news by @alice"
    assert m2["urls"] == ["https://example.org/a", "https://example.org/b"]
    assert m2["hashtags"] == ["#news"]
    assert m2["mentions"] == ["@alice"]
    assert m2["reactions"] == [{"reaction": "👍", "count": 5}, {"reaction": "custom:5368324170671202286", "count": 2}]
    assert m2["date"] == dt.datetime.fromtimestamp(1_700_000_120, UTC)
    assert m2["edit_date"] == dt.datetime.fromtimestamp(1_700_042_400, UTC)
    assert m2["post_author"] == "Editor"
    assert m2["url"] == f"https://t.me/{USERNAME}/2"
    assert m2["source"] == "export" and m2["raw_schema"] == "tdesktop-export"
    assert json.loads(m2["raw_json"])["reactions"][0]["emoji"] == "👍"
    assert messages[1]["message_type"] == "service" and messages[1]["service_action"] == "create_channel"
    assert messages[3]["media_kind"] == "photo"
    assert messages[4]["reply_to_message_id"] == 2 and messages[4]["fwd_from_name"] == "Other Channel"
    assert messages[6]["media_kind"] == "video"

    media = {row["message_id"]: row for row in read(ws, "media")}
    photo = (export / "photos" / "p1.jpg").read_bytes()
    assert media[3]["status"] == "hashed" and media[3]["hashed_variant"] == "full"
    assert media[3]["md5"] == hashlib.md5(photo).hexdigest()
    assert media[3]["sha256"] == hashlib.sha256(photo).hexdigest()
    assert (media[3]["width"], media[3]["height"], media[3]["hashed_bytes"]) == (640, 480, len(photo))
    assert len(media[3]["pdq"]) == 64 and len(media[3]["phash"]) == 16 and len(media[3]["dhash"]) == 16
    assert media[3]["pdq_quality"] > 0
    assert media[5]["status"] == "skipped" and "File not included" in media[5]["status_reason"]
    assert media[6]["status"] == "skipped" and "File exceeds maximum size" in media[6]["status_reason"]
    assert media[6]["duration_s"] == 12.0 and media[6]["file_size"] == 3_000_000_000

    channels = read(ws, "channels")
    assert len(channels) == 1 and channels[0]["username"] == USERNAME and channels[0]["message_count"] == 6
    report = json.loads(next((ws.storage / "_state" / "runs").glob("*.json")).read_text())
    assert report["counts"]["media_hashed"] == 1 and report["counts"]["media_skipped"] == 2
    assert path.exists()


def test_old_style_export_without_unixtime_or_entities(ws: Workspace) -> None:
    old = [{"id": 10, "type": "message", "date": "2019-03-01T12:30:00", "from": "Old", "from_id": 1,
            "text": "plain old text"},
           {"id": 11, "type": "message", "date": "2019-03-02T08:00:00", "edited": "2019-03-02T09:00:00",
            "text": ["mixed ", {"type": "hashtag", "text": "#old"}, " ", {"type": "link", "text": "http://x.org"}]}]
    write_export(ws.root / "export", export_doc(old))
    ws.run("import-export", str(ws.root / "export" / "result.json"), check=True)
    messages = by_id(read(ws, "messages"))
    assert messages[10]["text"] == "plain old text"
    assert messages[10]["date"] == dt.datetime(2019, 3, 1, 12, 30, tzinfo=UTC)
    assert messages[11]["text"] == "mixed #old http://x.org"
    assert messages[11]["hashtags"] == ["#old"] and messages[11]["urls"] == ["http://x.org"]
    assert messages[11]["edit_date"] == dt.datetime(2019, 3, 2, 9, 0, tzinfo=UTC)


def test_minified_export_gives_the_same_rows_as_pretty(ws: Workspace, tmp_path: Path) -> None:
    """The fast reader (tdesktop layout) and the general reader (any JSON) agree column by column."""
    docs = [message(i, text=["x ", {"type": "hashtag", "text": f"#t{i % 3}"}]) for i in range(1, 400)]
    write_export(ws.root / "pretty", export_doc(docs))
    ws.run("import-export", str(ws.root / "pretty"), check=True)
    pretty = read(ws, "messages")

    other = Workspace(tmp_path / "other", tmp_path / "other" / "data", ws.config)
    (tmp_path / "other" / "tmp").mkdir(parents=True)
    other.config = tmp_path / "other" / "chanwatch.toml"
    other.config.write_text(ws.config.read_text().replace(str(ws.storage), str(other.storage)))
    write_export(other.root / "mini", export_doc(docs), pretty=False)
    other.run("import-export", str(other.root / "mini"), check=True)
    minified = read(other, "messages")
    report = json.loads(next((other.storage / "_state" / "runs").glob("*.json")).read_text())
    assert report["reader"] == "general"

    volatile = {"collected_at", "run_id", "raw_json"}
    assert len(pretty) == len(minified) == 399
    for a, b in zip(pretty, minified, strict=True):
        assert {k: v for k, v in a.items() if k not in volatile} == {k: v for k, v in b.items() if k not in volatile}
        assert json.loads(a["raw_json"]) == json.loads(b["raw_json"])


def test_reimport_changes_no_row_and_no_file(ws: Workspace) -> None:
    export = ws.root / "export"
    write_export(export, export_doc(rich_messages(export)))
    ws.run("import-export", str(export), check=True)
    files = {p: p.read_bytes() for p in ws.storage.rglob("*.parquet")}
    before = {name: read(ws, name) for name in ("messages", "media", "channels")}

    second = ws.run("import-export", str(export), check=True)
    assert "(0 new or changed" in second.stdout
    assert {p: p.read_bytes() for p in ws.storage.rglob("*.parquet")} == files
    assert {name: read(ws, name) for name in ("messages", "media", "channels")} == before


def test_edited_message_in_a_later_export_replaces_its_row(ws: Workspace) -> None:
    write_export(ws.root / "export", export_doc([message(1, text="first"), message(2, text="two")]))
    ws.run("import-export", str(ws.root / "export"), check=True)
    first_run = by_id(read(ws, "messages"))
    write_export(ws.root / "export", export_doc([message(1, text="first, edited", edited_unixtime="1700009999"),
                                                 message(2, text="two"), message(3, text="three")]))
    ws.run("import-export", str(ws.root / "export"), check=True)
    rows = read(ws, "messages")
    messages = by_id(rows)
    assert len(rows) == 3
    assert messages[1]["text"] == "first, edited"
    assert messages[2]["run_id"] == first_run[2]["run_id"]  # unchanged rows keep their first version
    assert messages[1]["run_id"] != first_run[1]["run_id"]


def test_datasets_read_with_pandas_pyarrow_and_duckdb(ws: Workspace) -> None:
    docs = [message(i, seconds=i * 86_400 * 10) for i in range(1, 200)]  # ~5 years -> many months
    write_export(ws.root / "export", export_doc(docs))
    ws.run("import-export", str(ws.root / "export"), check=True)
    frame = pd.read_parquet(ws.storage / "messages")
    assert len(frame) == 199 and str(frame["channel_id"].dtype) == "int64"
    table = pads.dataset(ws.storage / "messages", partitioning="hive").to_table()
    assert table.num_rows == 199 and "month" in table.column_names
    assert pq.read_table(ws.storage / "messages").num_rows == 199
    months = duckdb.sql(f"SELECT count(DISTINCT month) FROM read_parquet('{ws.storage}/messages/**/*.parquet', "
                        "hive_partitioning=true)").fetchall()[0][0]
    assert months == len(list((ws.storage / "messages").iterdir()))
    # few, large files: one per channel, month and id block
    assert len(list((ws.storage / "messages").rglob("*.parquet"))) == months


def test_full_account_export_imports_public_channels_and_lists_the_rest(ws: Workspace) -> None:
    doc = {
        "about": "Here is the data you requested.",
        "personal_information": {"user_id": 1, "first_name": "Someone"},
        "chats": {"about": "This page lists all chats from this export.", "list": [
            {"name": "Friend", "type": "personal_chat", "id": 42, "messages": [message(1, text="hi")]},
            export_doc([message(1, text="public one"), message(2, text="public two")]),
            {"name": "Club", "type": "private_group", "id": 43, "messages": [message(1, text="secret")]},
            {"name": "Elsewhere", "type": "public_channel", "id": 44, "messages": [message(1, text="not listed")]},
        ]},
    }
    write_export(ws.root / "account", doc)
    result = ws.run("import-export", str(ws.root / "account"), check=True)
    assert [m["text"] for m in read(ws, "messages")] == ["public one", "public two"]
    assert "skipped chat 'Friend' (personal_chat)" in result.stderr
    assert "skipped chat 'Club' (private_group)" in result.stderr
    assert "'Elsewhere' (public_channel)" in result.stderr and "not on the allowlist" in result.stderr
    report = json.loads(next((ws.storage / "_state" / "runs").glob("*.json")).read_text())
    assert sorted(c["type"] for c in report["skipped_chats"]) == ["personal_chat", "private_group", "public_channel"]
