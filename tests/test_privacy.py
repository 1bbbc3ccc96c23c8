"""Data protection: author names (keep, drop, pseudonymise) and text retention, for every writer of messages."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from telethon.tl import types

from chanwatch.demo_data import _AUTHORS, _OTHER_CHANNELS, build_demo_export
from chanwatch.settings import PrivacySettings, Settings, load_settings
from chanwatch.steps.collect import collect
from chanwatch.steps.demo import demo_settings, import_demo_list
from chanwatch.steps.import_export import import_export
from chanwatch.steps.match import run_match
from chanwatch.steps.retention import KEY_ENV, purge_expired
from processing.errors import BadInputError
from processing.privacy import MessagePolicy
from processing.telegram_records import raw_json
from storage.privacy_key import key_path
from storage.schemas import MESSAGES
from storage.store import Store
from storage.writer import DatasetWriter
from tests.conftest import CLI, REPO
from tests.telegram_fake import DEMO_CHANNEL_ID, DEMO_START, FakeTelegramClient, demo_world, make_message, make_user
from tests.test_collect import collect_settings

NOW = dt.datetime(2026, 10, 31, tzinfo=dt.UTC)
RETAIN_DAYS = 30
CUTOFF = NOW - dt.timedelta(days=RETAIN_DAYS)  # 2026-10-01: the demo's September loses its text, October keeps it
DEMO_NAMES = [*_AUTHORS, *_OTHER_CHANNELS]
PSEUDONYM = re.compile(r"anon:[0-9a-f]{16}")
KEY = b"k" * 32
PURGED_COLUMNS = ("text", "raw_json", "urls", "mentions")  # as docs/research.md promises


# --- helpers -------------------------------------------------------------------------------------------------------

def settings_for(root: Path, *, names: str = "keep", days: int = 0) -> Settings:
    base = demo_settings(load_settings(storage=str(root), environ={}))
    return dataclasses.replace(base, privacy=PrivacySettings(retain_text_days=days, author_names=names))


def message_rows(root: Path) -> dict[tuple[int, int], dict]:
    rows = Store(str(root)).read(MESSAGES).to_pylist()
    return {(r["channel_id"], r["message_id"]): r for r in rows}


def file_bytes(root: Path, under: str = "") -> dict[str, bytes]:
    """Every file under the root (or one dataset), by relative path; the lock file is not data."""
    base = root / under if under else root
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(base.rglob("*"))
            if p.is_file() and p.name != "writer.lock"}


def datasets_bytes(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in file_bytes(root).items() if not k.startswith("_state/")}


def find_in_root(root: Path, needles: list[str | bytes], skip: tuple[Path, ...] = ()) -> list[tuple[str, str]]:
    """Where any needle occurs under the root: in a file's bytes, or in a Parquet file's decoded values."""
    encoded = [n.encode() if isinstance(n, str) else n for n in needles]
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p not in skip):
        contents = [path.read_bytes()]
        if path.suffix == ".parquet":
            contents.append(orjson.dumps(pq.read_table(path).to_pylist(), default=str))
        for needle in encoded:
            if any(needle in data for data in contents):
                found.append((path.relative_to(root).as_posix(), needle.decode(errors="replace")))
    return found


def expected_pseudonym(key: bytes, domain: str, value: str) -> str:
    return "anon:" + hmac.new(key, f"{domain}\x00{value}".encode(), hashlib.sha256).hexdigest()[:16]


def import_demo(root: Path, export_json: Path, *, names: str = "keep", days: int = 0, now: dt.datetime = NOW,
                match: bool = False) -> None:
    settings = settings_for(root, names=names, days=days)
    import_export(settings, export_json, now=now)
    if match:
        import_demo_list(settings, export_json)
        run_match(settings)


# --- fixtures ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def export_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_export(tmp_path_factory.mktemp("demo") / "export")


@pytest.fixture(scope="module")
def plain_root(tmp_path_factory: pytest.TempPathFactory, export_json: Path) -> Path:
    """The demo imported and matched with every privacy setting off (copy it before changing it)."""
    root = tmp_path_factory.mktemp("plain") / "data"
    import_demo(root, export_json, match=True)
    return root


@pytest.fixture
def root(tmp_path: Path, plain_root: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(plain_root, copy)
    return copy


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


# --- the transform -------------------------------------------------------------------------------------------------

def test_pseudonyms_are_keyed_stable_and_never_hashed_twice() -> None:
    policy = MessagePolicy("pseudonymise", key=KEY)
    name = policy.name("Mira Kovač")
    assert PSEUDONYM.fullmatch(name) and name != "Mira Kovač"
    assert name == policy.name("Mira Kovač") == MessagePolicy("pseudonymise", key=KEY).name("Mira Kovač")
    assert name == expected_pseudonym(KEY, "name", "Mira Kovač")
    assert policy.name(name) == name  # idempotent: a stored pseudonym stays as it is
    assert policy.name("Tomas Lind") != name
    assert MessagePolicy("pseudonymise", key=b"x" * 32).name("Mira Kovač") != name
    assert policy.user_id(5550123987) == policy.user_id("user5550123987") != policy.name("5550123987")
    assert MessagePolicy("drop").name("Mira Kovač") is None and MessagePolicy("drop").user_id(42) is None
    assert MessagePolicy("keep").name("Mira Kovač") == "Mira Kovač"
    assert KEY.decode() not in repr(policy)
    with pytest.raises(ValueError):
        MessagePolicy("pseudonymise")


def test_raw_records_of_exports_and_the_api_lose_names_and_user_ids_and_keep_the_rest() -> None:
    export = {"id": 7, "type": "message", "from": "Rosa Example", "from_id": "user5550123987", "author": "Desk Editor",
              "forwarded_from": "Some Source", "forwarded_from_id": "user777", "text": "hello",
              "text_entities": [{"type": "mention_name", "text": "Rosa", "user_id": 5550123987}]}
    channel_post = {"id": 8, "from": "A Channel", "from_id": "channel123", "text": "x"}
    fwd = types.MessageFwdHeader(date=DEMO_START, from_id=types.PeerUser(5550123987), from_name="Hidden Person",
                                 post_author="Forward Signer")
    live = raw_json(make_message(DEMO_CHANNEL_ID, 9, DEMO_START, "body", fwd_from=fwd, post_author="Desk Editor"))
    for mode in ("pseudonymise", "drop"):
        policy = MessagePolicy(mode, key=KEY)
        out_export = orjson.loads(policy.raw_record(orjson.dumps(export).decode()))
        out_live = policy.raw_record(live)
        for secret in ("Rosa Example", "Desk Editor", "Some Source", "5550123987", "user777", "Hidden Person",
                       "Forward Signer"):
            assert secret not in orjson.dumps(out_export).decode() and secret not in out_live, (mode, secret)
        assert (out_export["text"], out_export["id"], out_export["text_entities"][0]["text"]) == ("hello", 7, "Rosa")
        live_dict = orjson.loads(out_live)
        assert live_dict["message"] == "body" and live_dict["fwd_from"]["_"] == "MessageFwdHeader"
        assert policy.raw_record(orjson.dumps(channel_post).decode()) == orjson.dumps(channel_post).decode()
        assert policy.raw_record(out_live) == out_live  # idempotent
        if mode == "pseudonymise":
            assert out_export["author"] == policy.name("Desk Editor") == live_dict["post_author"]
            assert out_export["from_id"] == policy.user_id(5550123987) == live_dict["fwd_from"]["from_id"]["user_id"]
        else:
            assert out_export["author"] is None and live_dict["fwd_from"]["from_name"] is None
    assert MessagePolicy("keep").raw_record(live) == live


def test_messages_cannot_be_written_around_the_policy(tmp_path: Path) -> None:
    txn = Store(str(tmp_path)).begin("run-x")
    with pytest.raises(ValueError, match="privacy policy"):
        DatasetWriter(txn, MESSAGES)
    txn.abort()


# --- author names at write time ------------------------------------------------------------------------------------

def test_keep_stores_the_names_and_the_scan_finds_them(plain_root: Path) -> None:
    """The scanner below must be able to see names, or its silence proves nothing."""
    found = {needle for _, needle in find_in_root(plain_root, DEMO_NAMES)}
    assert found == set(DEMO_NAMES)


def test_demo_with_pseudonymised_names_keeps_counts_and_hides_names_and_key(tmp_path: Path, plain_root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANWATCH_")}
    env.update(TMPDIR=str(tmp_path), COLUMNS="200", CHANWATCH_PRIVACY_AUTHOR_NAMES="pseudonymise")
    outputs = []
    for run in ("first", "second"):
        result = subprocess.run([*CLI, "-v", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
        if run == "first":
            after_first = datasets_bytes(tmp_path / "var/data")
    root = tmp_path / "var/data"
    assert datasets_bytes(root) == after_first, "a second run rewrites nothing"

    key_file = key_path(Store(str(root)))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_hex = key_file.read_text().strip()
    assert find_in_root(root, DEMO_NAMES) == []  # datasets, raw records, state, and the review database
    assert find_in_root(root, [key_hex, bytes.fromhex(key_hex)], skip=(key_file,)) == []
    assert not any(key_hex in out or name in out for out in outputs for name in DEMO_NAMES)

    rows, plain = message_rows(root), message_rows(plain_root)
    assert rows.keys() == plain.keys()
    key = bytes.fromhex(key_hex)
    for ident, row in rows.items():
        original = plain[ident]
        for column in ("post_author", "fwd_from_name"):
            expected = None if original[column] is None else expected_pseudonym(key, "name", original[column])
            assert row[column] == expected
        assert row["text"] == original["text"] and row["urls"] == original["urls"]
    authors = {r["post_author"] for r in rows.values()} - {None}
    assert len(authors) == len(_AUTHORS)  # one pseudonym per person: per-author counts still work


def test_an_environment_key_is_used_and_never_written(tmp_path: Path, export_json: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    secret = "correct-horse-battery-staple-0123456789"
    monkeypatch.setenv(KEY_ENV, secret)
    caplog.set_level(logging.DEBUG)
    root = tmp_path / "data"
    import_demo(root, export_json, names="pseudonymise")
    purge_expired(settings_for(root, names="pseudonymise", days=RETAIN_DAYS), now=NOW)
    assert not key_path(Store(str(root))).exists()
    rows = message_rows(root)
    signed = [r for r in rows.values() if r["post_author"]]
    assert signed and all(r["post_author"] in {expected_pseudonym(secret.encode(), "name", a) for a in _AUTHORS}
                          for r in signed)
    assert find_in_root(root, [secret, *DEMO_NAMES]) == []
    assert secret not in caplog.text


def test_a_short_environment_key_is_refused(tmp_path: Path, export_json: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "tiny-key")
    with pytest.raises(BadInputError, match=KEY_ENV) as info:
        import_demo(tmp_path / "data", export_json, names="pseudonymise")
    assert "tiny-key" not in str(info.value)


def test_drop_stores_no_names(tmp_path: Path, export_json: Path) -> None:
    root = tmp_path / "data"
    import_demo(root, export_json, names="drop")
    rows = message_rows(root).values()
    assert all(r["post_author"] is None and r["fwd_from_name"] is None for r in rows)
    assert find_in_root(root, DEMO_NAMES) == []
    assert not key_path(Store(str(root))).exists()


def test_live_collection_pseudonymises_names_and_user_ids(tmp_path: Path) -> None:
    world = demo_world()
    person = world.add_user(make_user(5550123987, "rosa_example", "Rosa", "Example"))
    at = DEMO_START + dt.timedelta(days=5, hours=12)
    world.add_message(make_message(DEMO_CHANNEL_ID, 42, at, "From a hidden account.", views=3, fwd_from=
                                   types.MessageFwdHeader(date=at, from_name="Hidden Person")))
    world.add_message(make_message(DEMO_CHANNEL_ID, 43, at, "From Rosa.", views=3, fwd_from=
                                   types.MessageFwdHeader(date=at, from_id=types.PeerUser(person.id),
                                                          post_author="Forward Signer")))
    settings = collect_settings(tmp_path)
    settings = dataclasses.replace(settings, privacy=PrivacySettings(author_names="pseudonymise"))
    collect(settings, FakeTelegramClient(world), now=DEMO_START + dt.timedelta(days=6))
    rows = {k[1]: v for k, v in message_rows(tmp_path).items()}
    key = bytes.fromhex(key_path(Store(str(tmp_path))).read_text().strip())
    policy = MessagePolicy("pseudonymise", key=key)
    assert rows[42]["fwd_from_name"] == policy.name("Hidden Person")
    assert rows[43]["fwd_from_name"] == policy.name("Forward Signer")
    assert [r["post_author"] for r in rows.values() if r["post_author"]] == [policy.name("Desk Editor")]
    assert orjson.loads(rows[43]["raw_json"])["fwd_from"]["from_id"] == {"_": "PeerUser",
                                                                         "user_id": policy.user_id(person.id)}
    assert find_in_root(tmp_path, ["Hidden Person", "Forward Signer", "Desk Editor", str(person.id)]) == []
    before = file_bytes(tmp_path, "messages")
    collect(settings, FakeTelegramClient(world), now=DEMO_START + dt.timedelta(days=6, hours=1))  # rescans all
    assert file_bytes(tmp_path, "messages") == before


# --- retention -----------------------------------------------------------------------------------------------------

def test_retention_purges_exactly_the_old_text_and_raw_record(root: Path) -> None:
    before_rows, before_files = message_rows(root), file_bytes(root)
    counts = purge_expired(settings_for(root, days=RETAIN_DAYS), now=NOW)
    after_rows, after_files = message_rows(root), file_bytes(root)

    old = {k for k, r in before_rows.items() if r["date"] < CUTOFF}
    assert 0 < len(old) < len(before_rows)
    assert all(any(before_rows[k][c] for k in old) for c in PURGED_COLUMNS)  # each had something to purge
    assert counts["rows_text_purged"] == len(old) and counts["rows_changed"] == len(old)
    assert counts["files_rewritten"] == 1  # September's file; October's is untouched
    assert after_rows.keys() == before_rows.keys()
    for ident, row in after_rows.items():
        before = before_rows[ident]
        if ident in old:
            assert all(row[c] is None for c in PURGED_COLUMNS), ident
            assert {k: v for k, v in row.items() if k not in PURGED_COLUMNS} == \
                   {k: v for k, v in before.items() if k not in PURGED_COLUMNS}
        else:
            assert row == before
    changed = {p for p in before_files.keys() | after_files.keys() if before_files.get(p) != after_files.get(p)}
    assert {p for p in changed if not p.startswith("_state/runs/")} == {
        "messages/month=2026-09/c1999000001-b00000.parquet"}
    for path in (root / "messages").rglob("*.parquet"):
        schema = pq.read_schema(path)
        assert schema.remove_metadata().equals(MESSAGES.schema.remove_metadata())
        assert schema.metadata[b"chanwatch.schema_version"] == b"1"

    # a second run changes nothing, byte for byte
    again = purge_expired(settings_for(root, days=RETAIN_DAYS), now=NOW)
    assert again["files_rewritten"] == 0 and again["rows_changed"] == 0
    assert file_bytes(root) == after_files


def test_reimporting_or_recollecting_does_not_bring_purged_text_back(root: Path, export_json: Path) -> None:
    purge_expired(settings_for(root, days=RETAIN_DAYS), now=NOW)
    purged = file_bytes(root, "messages")
    import_demo(root, export_json, days=RETAIN_DAYS, now=NOW + dt.timedelta(hours=1))
    assert file_bytes(root, "messages") == purged
    assert all(r["text"] is None for r in message_rows(root).values() if r["date"] < CUTOFF)


def test_writers_apply_the_same_retention_as_the_purge(tmp_path: Path, root: Path, export_json: Path) -> None:
    purge_expired(settings_for(root, days=RETAIN_DAYS), now=NOW)
    fresh = tmp_path / "fresh"
    import_demo(fresh, export_json, days=RETAIN_DAYS, now=NOW)
    volatile = ("collected_at", "run_id")

    def strip(rows: dict) -> dict:
        return {k: {c: v for c, v in r.items() if c not in volatile} for k, r in rows.items()}

    assert strip(message_rows(fresh)) == strip(message_rows(root))


def test_retention_on_live_collection(tmp_path: Path) -> None:
    now = DEMO_START + dt.timedelta(days=6)
    settings = dataclasses.replace(collect_settings(tmp_path), privacy=PrivacySettings(retain_text_days=3))
    collect(settings, FakeTelegramClient(demo_world()), now=now)
    rows = message_rows(tmp_path).values()
    cutoff = now - dt.timedelta(days=3)
    assert {r["raw_json"] is None for r in rows if r["date"] < cutoff} == {True}
    assert {r["raw_json"] is None for r in rows if r["date"] >= cutoff} == {False}
    stored = file_bytes(tmp_path, "messages")
    assert purge_expired(settings, now=now)["files_rewritten"] == 0
    assert file_bytes(tmp_path, "messages") == stored


def test_switching_names_on_later_rewrites_the_stored_rows(root: Path, export_json: Path) -> None:
    before = message_rows(root)
    named = sum(1 for r in before.values() if r["post_author"] or r["fwd_from_name"])
    settings = settings_for(root, names="pseudonymise")
    counts = purge_expired(settings, now=NOW)
    assert counts["rows_names_changed"] == named == counts["rows_changed"] and counts["rows_text_purged"] == 0
    assert find_in_root(root, DEMO_NAMES) == []
    for ident, row in message_rows(root).items():
        assert row["text"] == before[ident]["text"] and row["views"] == before[ident]["views"]
    stored = file_bytes(root)
    assert purge_expired(settings, now=NOW)["files_rewritten"] == 0 and file_bytes(root) == stored
    import_demo(root, export_json, names="pseudonymise")
    assert file_bytes(root, "messages") == {k: v for k, v in stored.items() if k.startswith("messages/")}
    # and from pseudonyms to drop
    assert purge_expired(settings_for(root, names="drop"), now=NOW)["rows_names_changed"] == named
    assert all(r["post_author"] is None and r["fwd_from_name"] is None for r in message_rows(root).values())


def test_nothing_to_do_touches_nothing(root: Path) -> None:
    stored = file_bytes(root)
    assert purge_expired(settings_for(root), now=NOW)["files_rewritten"] == 0
    assert file_bytes(root) == stored


PURGE_SCRIPT = """
import dataclasses, datetime as dt, sys
from chanwatch.settings import PrivacySettings, load_settings
from chanwatch.steps.demo import demo_settings
from chanwatch.steps.retention import purge_expired
settings = demo_settings(load_settings(storage=sys.argv[1], environ={}))
settings = dataclasses.replace(settings, privacy=PrivacySettings(retain_text_days=int(sys.argv[2]),
                                                                 author_names="pseudonymise"))
print(purge_expired(settings, now=dt.datetime.fromisoformat(sys.argv[3])))
"""


def test_a_purge_killed_while_committing_is_completed_by_the_next_run(tmp_path: Path, root: Path) -> None:
    clean = tmp_path / "clean"
    shutil.copytree(root, clean)
    env = {**os.environ, KEY_ENV: "a-stable-test-key-0123456789abcdef"}
    args = [str(RETAIN_DAYS), NOW.isoformat()]
    subprocess.run([sys.executable, "-c", PURGE_SCRIPT, str(clean), *args], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=300)
    killed = subprocess.run([sys.executable, "-c", PURGE_SCRIPT, str(root), *args], cwd=REPO, capture_output=True,
                            env={**env, "CHANWATCH_FAULT_INJECT": "commit:1"}, timeout=300)
    assert killed.returncode == -9, killed.stderr  # one of the two rewritten files is in place, one is not
    assert (root / "_staging").exists()
    subprocess.run([sys.executable, "-c", PURGE_SCRIPT, str(root), *args], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=300)
    assert message_rows(root) == message_rows(clean)
    assert not (root / "_staging").exists()


def test_retention_also_purges_the_review_databases_copy_of_old_text(tmp_path: Path) -> None:
    import datetime as dt

    from sqlalchemy import select

    from chanwatch.settings import load_settings
    from chanwatch.steps.retention import apply_data_protection
    from storage.reviewdb.engine import session_factory
    from storage.reviewdb.models import Item
    from tests.exports import write_config
    from tests.review_app import seeded_engine
    from tests.review_data import SyntheticMatch, _hex

    storage = tmp_path / "data"
    old = SyntheticMatch(1, 100, 0, "l", "md5", _hex("a", 32), 0, "c", text="old post text")
    engine = seeded_engine(storage, [old])
    config = write_config(tmp_path / "chanwatch.toml", storage)
    config.write_text(config.read_text() + "\n[privacy]\nretain_text_days = 30\n")
    settings = load_settings(config, environ={})
    assert apply_data_protection(settings, now=dt.datetime(2026, 10, 15, tzinfo=dt.UTC))["review_texts_purged"] == 0
    counts = apply_data_protection(settings, now=dt.datetime(2026, 12, 4, tzinfo=dt.UTC))
    assert counts["review_texts_purged"] == 1
    with session_factory(engine)() as s:
        item = s.scalars(select(Item)).one()
        assert item.message_text is None and item.message_url  # the lead and its evidence link stay
    assert apply_data_protection(settings, now=dt.datetime(2026, 12, 4, tzinfo=dt.UTC))["review_texts_purged"] == 0
