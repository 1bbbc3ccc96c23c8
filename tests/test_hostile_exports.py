"""Hostile and broken exports: a clear error naming the file (and line or message), nothing lost or half-imported,
and nothing outside the export folder ever read."""

from __future__ import annotations

import builtins
import io
import json
import os
from pathlib import Path

import pytest

from chanwatch.settings import load_settings
from chanwatch.steps.import_export import import_export
from processing.errors import BadInputError
from tests.conftest import Workspace
from tests.exports import benign_jpeg, export_doc, message, write_export
from tests.test_import_export import by_id, read


def dataset_files(ws: Workspace) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in ws.storage.rglob("*.parquet")}


class OpenSpy:
    """Records every path the import opens, through os.open and builtins.open."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real_os_open, real_open, real_io_open = os.open, builtins.open, io.open

        def spy_os_open(path, *args, **kwargs):
            self.paths.append(os.fspath(path))
            return real_os_open(path, *args, **kwargs)

        def spy_open(file, *args, **kwargs):
            if not isinstance(file, int):
                self.paths.append(os.fspath(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(os, "open", spy_os_open)
        monkeypatch.setattr(builtins, "open", spy_open)
        monkeypatch.setattr(io, "open", spy_open)
        del real_io_open


def test_media_paths_that_escape_the_folder_are_skipped_and_never_read(
        ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.jpg"
    secret.write_bytes(b"\xff\xd8\xff\xe0 not for chanwatch")
    export = ws.root / "export"
    (export / "photos").mkdir(parents=True)
    (export / "photos" / "ok.jpg").write_bytes(benign_jpeg(1))
    (export / "photos" / "link.jpg").symlink_to(secret)
    (export / "photos" / "dirlink").symlink_to(outside, target_is_directory=True)
    docs = [
        message(1, photo="photos/ok.jpg"),
        message(2, photo="../outside/secret.jpg"),
        message(3, photo=str(secret)),
        message(4, photo="photos/link.jpg"),
        message(5, photo="photos/dirlink/secret.jpg"),
        message(6, photo="photos/nul\u0000.jpg"),
        message(7, photo="photos/missing.jpg"),
        message(8, file="..\\..\\outside\\secret.jpg", media_type="video_file"),
    ]
    write_export(export, export_doc(docs))
    spy = OpenSpy(monkeypatch)
    result = import_export(load_settings(ws.config), export)
    monkeypatch.undo()

    media = {row["message_id"]: row for row in read(ws, "media")}
    assert media[1]["status"] == "hashed"
    reasons = {i: media[i]["status_reason"] for i in range(2, 9)}
    assert "escapes the export folder" in reasons[2]
    assert "absolute path" in reasons[3]
    assert "outside the export folder (symlink)" in reasons[4]
    assert "outside the export folder (symlink)" in reasons[5]
    assert "NUL byte" in reasons[6]
    assert "missing" in reasons[7]
    assert "escapes the export folder" in reasons[8]
    assert all(media[i]["status"] == "skipped" and media[i]["md5"] is None for i in range(2, 9))
    assert result.counts["media_skipped"] == 7
    assert not [p for p in spy.paths if str(outside) in p or "secret" in p], spy.paths
    assert len(read(ws, "messages")) == 8  # the messages themselves are kept


def test_truncated_export_is_rejected_whole_and_leaves_data_untouched(ws: Workspace) -> None:
    write_export(ws.root / "good", export_doc([message(i) for i in range(1, 50)]))
    ws.run("import-export", str(ws.root / "good"), check=True)
    before = dataset_files(ws)

    path = write_export(ws.root / "bad", export_doc([message(i, text=f"v2 {i}") for i in range(1, 3000)]))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    last_line = path.read_bytes().count(b"\n") + 1
    result = ws.run("import-export", str(path))
    assert result.returncode == 2, result.stderr
    assert f"{path}:{last_line}" in result.stderr and "truncated" in result.stderr
    assert "Traceback" not in result.stderr
    assert dataset_files(ws) == before
    assert not list((ws.storage / "_staging").glob("*/files/**/*.parquet"))


def test_invalid_json_names_the_exact_line(ws: Workspace) -> None:
    path = write_export(ws.root / "bad", export_doc([message(i) for i in range(1, 200)]))
    lines = path.read_text().split("\n")
    target = next(i for i, line in enumerate(lines) if '"id": 150,' in line)
    lines[target] = '   "id": 150,,'
    path.write_text("\n".join(lines))
    result = ws.run("import-export", str(path))
    assert result.returncode == 2
    assert f"{path}:{target + 1}:" in result.stderr, result.stderr
    assert not dataset_files(ws)


@pytest.mark.parametrize("chat_type", ["personal_chat", "bot_chat", "private_group", "private_supergroup",
                                       "public_supergroup", "private_channel", "saved_messages"])
def test_chats_that_are_not_public_channels_are_refused(ws: Workspace, chat_type: str) -> None:
    path = write_export(ws.root / "chat", export_doc([message(1)], chat_type=chat_type, name="Somebody"))
    result = ws.run("import-export", str(path))
    assert result.returncode == 2
    assert f"{path}:1: chat 'Somebody' is a {chat_type}; only public broadcast channels" in result.stderr
    assert not dataset_files(ws)


def test_public_channel_not_on_the_allowlist_is_refused(ws: Workspace) -> None:
    path = write_export(ws.root / "chat", export_doc([message(1)], chat_id=123456))
    result = ws.run("import-export", str(path))
    assert result.returncode == 2
    assert "not on the allowlist" in result.stderr and "channel_id = 123456" in result.stderr
    assert not dataset_files(ws)


def test_messages_with_wrong_field_types_are_skipped_with_file_line_and_id(ws: Workspace) -> None:
    docs = [message(1), message(2, views="many"), message(3), message(4, reply_to_message_id="x"),
            message(5, text=7), {"id": "six", "type": "message", "date_unixtime": "1700000000", "text": ""},
            message(7, date_unixtime="yesterday"), message(8), message(9)]
    docs[7]["text_entities"] = "nope"
    docs[1].pop("views")
    docs[1]["file_size"] = "big"
    docs[1]["file"] = "x.mp4"
    path = write_export(ws.root / "export", export_doc(docs))
    lines = path.read_text().split("\n")
    result = ws.run("import-export", str(path), check=True)
    assert sorted(by_id(read(ws, "messages"))) == [1, 3, 9]
    report = json.loads(next((ws.storage / "_state" / "runs").glob("*.json")).read_text())
    rejects = {r["message_id"]: r for r in report["rejects"]}
    assert rejects[2]["reason"] == "field file_size must be an integer, got a string"
    assert rejects[4]["reason"] == "field reply_to_message_id must be an integer, got a string"
    assert rejects[5]["reason"] == "field text must be a string or a list, got an integer"
    assert rejects[None]["reason"] == "field id must be an integer, got a string"
    assert rejects[7]["reason"] == "field date_unixtime is not a number of seconds"
    assert rejects[8]["reason"] == "field text_entities must be a list, got a string"
    for reject in report["rejects"]:
        assert reject["file"] == str(path)
        assert lines[reject["line"] - 1].strip() == "{", reject  # the line where the message starts
    assert f"{path}:{rejects[4]['line']} id=4: field reply_to_message_id" in result.stderr


@pytest.mark.parametrize("content", [b"[]", b'{"foo": 1}', b"", b"\xff\xfe{}", b"not json at all"])
def test_files_that_are_not_exports_get_exit_2(ws: Workspace, content: bytes) -> None:
    folder = ws.root / "junk"
    folder.mkdir()
    (folder / "result.json").write_bytes(content)
    result = ws.run("import-export", str(folder))
    assert result.returncode == 2, result.stderr
    assert str(folder / "result.json") in result.stderr
    assert "Traceback" not in result.stderr
    assert not dataset_files(ws)


def test_missing_path_and_folder_without_result_json(ws: Workspace) -> None:
    assert ws.run("import-export", str(ws.root / "nope")).returncode == 2
    (ws.root / "empty").mkdir()
    result = ws.run("import-export", str(ws.root / "empty"))
    assert result.returncode == 2 and "no result.json" in result.stderr


def test_media_over_the_size_limit_is_skipped(ws: Workspace) -> None:
    export = ws.root / "export"
    (export / "files").mkdir(parents=True)
    (export / "files" / "big.bin").write_bytes(b"0" * 5000)
    write_export(export, export_doc([message(1, file="files/big.bin", file_size=5000)]))
    result = ws.run("import-export", str(export), check=True, env={"CHANWATCH_IMPORT_MAX_MEDIA_BYTES": "1000"})
    assert result.returncode == 0
    media = read(ws, "media")
    assert media[0]["status"] == "skipped" and "import.max_media_bytes" in media[0]["status_reason"]


def test_bad_input_error_type_carries_exit_code_2() -> None:
    assert BadInputError("x").exit_code == 2
