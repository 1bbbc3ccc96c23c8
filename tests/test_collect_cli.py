"""`chanwatch login` and `chanwatch collect` through the CLI, with a fake Telegram: no secret leaks anywhere."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chanwatch import cli
from collectors.telegram import client as tg_client
from collectors.telegram.credentials import TelegramCredentials
from processing.errors import BadInputError
from tests.exports import write_config
from tests.telegram_fake import DEMO_START, FakeTelegramClient, demo_world

API_HASH = "5ec2e7a91b0c4d6fa3e8b7c6d5e4f3a2"
SESSION = "1BVtsOKABuSECRETSESSIONxq3Ld8w7Hh0ZmVzdA9yM2FrZXN0cmluZ0ZvclRlc3Rz"


@pytest.fixture
def fake_telegram(monkeypatch: pytest.MonkeyPatch) -> list[TelegramCredentials]:
    """Every client the CLI builds is a fake one on the demo world; the credentials it got are kept."""
    seen: list[TelegramCredentials] = []
    world = demo_world()
    world.flood_on("iter_messages", after_calls=20, seconds=1200)

    def factory(credentials: TelegramCredentials, settings) -> FakeTelegramClient:
        seen.append(credentials)
        return FakeTelegramClient(world)

    monkeypatch.setattr(tg_client, "client_factory", factory)
    return seen


def test_collect_never_shows_secrets(tmp_path: Path, fake_telegram: list, monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    config = write_config(tmp_path / "chanwatch.toml", tmp_path / "data", channels=[
        {"username": "fake_news_demo", "channel_id": 1888000001}, {"username": "fake_group_demo"},
        {"username": "missing_channel"}])
    monkeypatch.chdir(tmp_path)
    env = {"CHANWATCH_TELEGRAM_API_ID": "123456", "CHANWATCH_TELEGRAM_API_HASH": API_HASH,
           "CHANWATCH_TELEGRAM_SESSION": SESSION, "CHANWATCH_TELEGRAM_REQUESTS_PER_MINUTE": "100000",
           "CHANWATCH_TELEGRAM_DOWNLOADS_PER_MINUTE": "100000",
           "CHANWATCH_TELEGRAM_BACKFILL_DAYS": str((DEMO_START.now(DEMO_START.tzinfo) - DEMO_START).days + 2)}
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(cli.app, ["--config", str(config), "-v", "collect"], env=env)
    assert result.exit_code == 1, (result.output, result.exception)  # the FloodWait asks for a retry
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert fake_telegram and fake_telegram[0].api_hash == API_HASH and fake_telegram[0].session == SESSION
    assert "retry after 1200 s" in result.output
    assert "refused" in result.output and "missing_channel" in result.output
    assert API_HASH not in repr(fake_telegram[0]) and SESSION not in repr(fake_telegram[0])
    texts = [result.output, caplog.text]
    texts += [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    assert len(texts) > 5
    for text in texts:
        assert API_HASH not in text and SESSION not in text


def test_collect_without_credentials_says_what_to_set(tmp_path: Path) -> None:
    config = write_config(tmp_path / "chanwatch.toml", tmp_path / "data")
    result = CliRunner().invoke(cli.app, ["--config", str(config), "collect"], env={
        "CHANWATCH_TELEGRAM_API_ID": "", "CHANWATCH_TELEGRAM_API_HASH": "", "CHANWATCH_TELEGRAM_SESSION": ""})
    assert isinstance(result.exception, BadInputError) and result.exception.exit_code == 2  # main() maps it
    assert "CHANWATCH_TELEGRAM_SESSION" in str(result.exception) and "chanwatch login" in str(result.exception)


def test_collect_refuses_a_channel_that_is_not_allowlisted(tmp_path: Path, fake_telegram: list) -> None:
    config = write_config(tmp_path / "chanwatch.toml", tmp_path / "data")
    result = CliRunner().invoke(cli.app, ["--config", str(config), "collect", "--channel", "fake_news_demo"], env={
        "CHANWATCH_TELEGRAM_API_ID": "1", "CHANWATCH_TELEGRAM_API_HASH": API_HASH,
        "CHANWATCH_TELEGRAM_SESSION": SESSION})
    assert isinstance(result.exception, BadInputError) and "not on the allowlist" in str(result.exception)
    assert fake_telegram == [] or not (tmp_path / "data" / "messages").exists()


def test_login_prints_a_string_session_and_writes_no_session_file(tmp_path: Path, fake_telegram: list,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.app, ["login"], input=f"123456\n{API_HASH}\n+15550000000\n12345\n\n",
                                env={"CHANWATCH_TELEGRAM_API_ID": "", "CHANWATCH_TELEGRAM_API_HASH": ""})
    assert result.exit_code == 0, result.output
    assert "telegram_default" in result.output and "CHANWATCH_TELEGRAM_SESSION" in result.output
    assert fake_telegram[0].api_id == 123456
    assert API_HASH not in result.output  # typed with hidden input, never echoed
    assert not list(tmp_path.rglob("*.session")) and not list(Path.cwd().glob("*.session"))


def test_a_malformed_session_string_is_refused_without_quoting_it() -> None:
    from collectors.telegram.settings import TelegramSettings

    broken = SESSION[:-3]  # not valid base64 any more
    with pytest.raises(BadInputError) as raised:
        tg_client.new_client(TelegramCredentials(1, API_HASH, broken), TelegramSettings())
    assert "CHANWATCH_TELEGRAM_SESSION" in str(raised.value) and broken not in str(raised.value)
