"""Many Telegram accounts: stable assignment by rendezvous hashing, and collection that goes on when an
account is banned or flood-waited (fake Telegram: real TL objects, real Telethon errors)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from telethon import errors
from typer.testing import CliRunner

from chanwatch import accounts, cli
from chanwatch.settings import AllowlistEntry, Settings, load_settings
from chanwatch.steps.collect import collect
from collectors.telegram import client as tg_client
from collectors.telegram.credentials import TelegramCredentials, credentials_from_env, env_names
from processing.assignment import account_order, assign, choose_account
from processing.errors import BadInputError
from storage.store import Store
from tests.exports import write_config
from tests.telegram_fake import DEMO_START, FakeTelegramClient, FakeWorld, make_channel, make_message

NOW = DEMO_START + dt.timedelta(days=6)
ACCOUNTS = ("acct_a", "acct_b", "acct_c")
API_IDS = {"acct_a": 1001, "acct_b": 1002, "acct_c": 1003}
CHANNELS = tuple(f"watch_{i:02d}" for i in range(12))
ALLOWED_REQUESTS = {"ResolveUsernameRequest", "GetFullChannelRequest", "GetHistoryRequest", "GetFileRequest",
                    "GetChannelsRequest"}
NAMES = [f"channel_{i:04d}" for i in range(1000)]


# -- assignment (pure) ---------------------------------------------------------------------------------

def test_assignment_is_stable_case_insensitive_and_independent_of_order() -> None:
    first = assign(NAMES, ACCOUNTS)
    assert first == assign(NAMES, ACCOUNTS)
    assert assign(NAMES, tuple(reversed(ACCOUNTS))) == {a: first[a] for a in reversed(ACCOUNTS)}
    assert all(choose_account(n.upper(), ACCOUNTS) == choose_account("@" + n, ACCOUNTS) for n in NAMES[:50])
    assert sorted(n for names in first.values() for n in names) == NAMES  # every channel exactly once


def test_assignment_is_balanced_within_reason() -> None:
    sizes = {a: len(c) for a, c in assign(NAMES, ACCOUNTS).items()}
    assert all(270 <= n <= 400 for n in sizes.values()), sizes  # 333 each on average
    sizes = Counter(choose_account(n, [f"a{i}" for i in range(10)]) for n in NAMES)
    assert len(sizes) == 10 and all(60 <= n <= 140 for n in sizes.values()), sizes


def test_adding_or_removing_an_account_moves_only_the_channels_that_must_move() -> None:
    before = {n: choose_account(n, ACCOUNTS) for n in NAMES}
    grown = {n: choose_account(n, (*ACCOUNTS, "acct_d")) for n in NAMES}
    moved = [n for n in NAMES if before[n] != grown[n]]
    assert all(grown[n] == "acct_d" for n in moved)  # only to the new account
    assert 180 <= len(moved) <= 320, len(moved)  # about a quarter
    shrunk = {n: choose_account(n, ("acct_a", "acct_c")) for n in NAMES}
    assert all(shrunk[n] == before[n] for n in NAMES if before[n] != "acct_b")  # only acct_b's channels move


def test_an_account_out_of_rotation_hands_each_channel_to_its_next_account() -> None:
    plan = assign(NAMES, ACCOUNTS, available={"acct_a", "acct_c"})
    assert plan["acct_b"] == []
    for name in NAMES:
        order = account_order(name, ACCOUNTS)
        expected = next(a for a in order if a != "acct_b")
        assert choose_account(name, ACCOUNTS, {"acct_a", "acct_c"}) == expected
    spread = Counter(choose_account(n, ACCOUNTS, {"acct_a", "acct_c"}) for n in NAMES
                     if account_order(n, ACCOUNTS)[0] == "acct_b")
    assert set(spread) == {"acct_a", "acct_c"}  # a banned account's channels spread over the others
    assert choose_account("x_chan", ACCOUNTS, set()) == account_order("x_chan", ACCOUNTS)[0]  # none left: kept
    assert choose_account("x_chan", ACCOUNTS, set(), prefer="acct_c") == "acct_c"
    assert choose_account("x_chan", ACCOUNTS, set(ACCOUNTS), prefer="acct_b") == "acct_b"


# -- settings and credentials --------------------------------------------------------------------------

def test_accounts_setting_default_file_environment_and_errors(tmp_path: Path) -> None:
    assert load_settings(storage=str(tmp_path), environ={}).telegram.accounts == ("default",)
    path = write_config(tmp_path / "c.toml", tmp_path / "data")
    text = path.read_text()
    path.write_text(text + '\n[telegram]\naccounts = ["acct_a", "acct_b"]\naccount_flood_threshold = 600\n')
    loaded = load_settings(path, environ={}).telegram
    assert (loaded.accounts, loaded.account_flood_threshold, loaded.page_size) == (("acct_a", "acct_b"), 600, 100)
    assert load_settings(path, environ={"CHANWATCH_TELEGRAM_ACCOUNTS": "x1, y2"}).telegram.accounts == ("x1", "y2")
    for bad, message in (('["Acct"]', "not an account name"), ('["a", "a"]', "listed twice"), ("[]", "non-empty"),
                         ('"acct_a"', "non-empty array")):
        path.write_text(text + f"\n[telegram]\naccounts = {bad}\n")
        with pytest.raises(BadInputError, match=message) as caught:
            load_settings(path, environ={})
        assert f"{path}:" in str(caught.value) and "telegram.accounts" in str(caught.value)


def test_each_account_has_its_connection_pool_and_environment_names() -> None:
    assert (accounts.connection_id("default"), accounts.pool_name("default")) == ("telegram_default", "telegram_api")
    assert (accounts.connection_id("acct_a"), accounts.pool_name("acct_a")) == ("telegram_acct_a",
                                                                                "telegram_api_acct_a")
    assert accounts.collect_task_id("default") == "collect_channel"
    assert env_names() == ("CHANWATCH_TELEGRAM_API_ID", "CHANWATCH_TELEGRAM_API_HASH", "CHANWATCH_TELEGRAM_SESSION")
    assert env_names("acct_a")[2] == "CHANWATCH_TELEGRAM_ACCT_A_SESSION"
    env = {**account_env("acct_a"), **account_env("default")}
    assert credentials_from_env(env, account="acct_a").api_id == API_IDS["acct_a"]
    assert credentials_from_env(env).api_id == 4242
    with pytest.raises(BadInputError, match="CHANWATCH_TELEGRAM_ACCT_B_API_ID") as caught:
        credentials_from_env(env, account="acct_b")
    assert "acct_b" in str(caught.value) and secret("acct_a") not in str(caught.value)


# -- collection over several accounts ------------------------------------------------------------------

def secret(account: str) -> str:
    return f"SECRET-SESSION-{account}-do-not-print"


def account_env(account: str) -> dict[str, str]:
    api_id, api_hash, session = env_names(account)
    return {api_id: str(API_IDS.get(account, 4242)), api_hash: f"hash-{account}-0123456789abcdef",
            session: secret(account)}


def world_with_channels() -> FakeWorld:
    world = FakeWorld()
    for i, name in enumerate(CHANNELS):
        channel_id = 1777000000 + i
        world.add_channel(make_channel(channel_id, name, f"Watch {i}", participants_count=10 + i))
        world.add_messages(make_message(channel_id, m, DEMO_START + dt.timedelta(hours=m), f"post {m} of {name}",
                                        views=m) for m in range(1, 4))
    return world


class TroubledClient(FakeTelegramClient):
    """A fake account in trouble: every request raises the scripted error (a real Telethon one)."""

    def __init__(self, world: FakeWorld, trouble: BaseException | None) -> None:
        super().__init__(world)
        self.trouble = trouble

    async def _fake_serve(self, request: Any) -> Any:
        if self.trouble is not None:
            self.requests.append(type(request))
            raise self.trouble
        return await super()._fake_serve(request)


class Accounts:
    """A client factory that records whose credentials each client was built from (by api_id)."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world
        self.trouble: dict[str, BaseException] = {}
        self.built: list[tuple[str, TelegramCredentials]] = []
        self.clients: dict[str, list[TroubledClient]] = {}

    def factory(self, credentials: TelegramCredentials, _settings: Any) -> TroubledClient:
        account = next(a for a, i in API_IDS.items() if i == credentials.api_id)
        self.built.append((account, credentials))
        client = TroubledClient(self.world, self.trouble.get(account))
        self.clients.setdefault(account, []).append(client)
        return client

    def by_account(self, settings: Settings) -> Any:
        env = {k: v for a in ACCOUNTS for k, v in account_env(a).items()}
        return lambda account: self.factory(credentials_from_env(env, account=account), settings.telegram)

    def resolved(self, account: str) -> set[str]:
        return {details["entity"] for client in self.clients.get(account, []) for name, details in client.calls
                if name == "get_entity" and isinstance(details.get("entity"), str)}

    def requests(self) -> set[str]:
        return {r.__name__ for cs in self.clients.values() for c in cs for r in c.requests}


def multi_settings(root: Path) -> Settings:
    settings = load_settings(storage=str(root), environ={})
    approved = {"basis": "test fixture", "approved_by": "tests", "approved_at": dt.date(2026, 11, 23)}
    telegram = dataclasses.replace(settings.telegram, requests_per_minute=0, downloads_per_minute=0,
                                   backfill_days=30, accounts=ACCOUNTS)
    return dataclasses.replace(settings, allowlist=tuple(AllowlistEntry(n, **approved) for n in CHANNELS),
                               telegram=telegram)


def stored_channels(root: Path) -> Counter:
    import duckdb

    files = [str(p) for p in (root / "messages").rglob("*.parquet")]
    rows = duckdb.sql(f"SELECT channel_id FROM read_parquet({files}, hive_partitioning = false)").fetchall()
    return Counter(r[0] for r in rows)


def health(root: Path, account: str) -> dict | None:
    path = root / "_state" / "telegram" / "accounts" / f"{account}.json"
    return json.loads(path.read_text()) if path.exists() else None


def test_each_channel_is_read_by_its_account_with_that_accounts_credentials(tmp_path: Path) -> None:
    settings, fake = multi_settings(tmp_path), Accounts(world_with_channels())
    result = collect(settings, clients=fake.by_account(settings), now=NOW)
    plan = assign(CHANNELS, ACCOUNTS)
    assert all(plan[a] for a in ACCOUNTS), plan  # the fixture spreads over every account
    assert all(c.status == "ok" and c.account == choose_account(c.username, ACCOUNTS) for c in result.channels)
    for account in ACCOUNTS:
        assert fake.resolved(account) == set(plan[account])
        assert [(a, c.session) for a, c in fake.built if a == account] == [(account, secret(account))]  # one each
    assert fake.requests() <= ALLOWED_REQUESTS  # nothing joined, sent or marked read
    assert sum(stored_channels(tmp_path).values()) == 3 * len(CHANNELS)
    report = json.loads(next((tmp_path / "_state" / "runs").glob("*.json")).read_text())
    assert set(report["accounts"]) == set(ACCOUNTS)
    assert not any(secret(a) in p.read_text(errors="replace") for a in ACCOUNTS for p in tmp_path.rglob("*.json"))


@pytest.mark.parametrize("ban", [errors.AuthKeyUnregisteredError, errors.UserDeactivatedBanError,
                                 errors.SessionRevokedError])
def test_a_banned_account_is_recorded_and_its_channels_go_to_their_next_account(tmp_path: Path, ban: type) -> None:
    settings, fake = multi_settings(tmp_path), Accounts(world_with_channels())
    plan = assign(CHANNELS, ACCOUNTS)
    banned = max(ACCOUNTS, key=lambda a: len(plan[a]))
    fake.trouble[banned] = ban(request=None)
    result = collect(settings, clients=fake.by_account(settings), now=NOW)
    assert [c.status for c in result.channels] == ["ok"] * len(CHANNELS), [(c.username, c.reason)
                                                                           for c in result.channels]
    for outcome in result.channels:
        expected = next(a for a in account_order(outcome.username, ACCOUNTS) if a != banned)
        assert outcome.account == expected and outcome.account != banned
    first = plan[banned][0]
    assert next(c for c in result.channels if c.username == first).failed_over == [banned]
    assert [r.__name__ for r in fake.clients[banned][0].requests] == ["ResolveUsernameRequest"]  # tried once only
    state = health(tmp_path, banned)
    assert (state["status"], state["until"], state["since"]) == ("banned", None, NOW.isoformat())
    assert ban.__name__ in state["reason"]
    assert sum(stored_channels(tmp_path).values()) == 3 * len(CHANNELS)
    assert fake.requests() <= ALLOWED_REQUESTS

    # Later runs leave the banned account alone (its client is not even built) until its state file goes.
    built = len(fake.built)
    later = collect(settings, clients=fake.by_account(settings), now=NOW + dt.timedelta(days=3))
    assert all(c.status == "ok" and c.account != banned for c in later.channels)
    assert banned not in [a for a, _ in fake.built[built:]]
    assert accounts.plan(settings, NOW + dt.timedelta(days=3))[banned] == []


def test_a_long_flood_wait_hands_the_accounts_channels_on_and_the_account_returns_after_it(tmp_path: Path) -> None:
    settings, fake = multi_settings(tmp_path), Accounts(world_with_channels())
    plan = assign(CHANNELS, ACCOUNTS)
    waiting = sorted(ACCOUNTS, key=lambda a: (len(plan[a]), a))[1]
    fake.trouble[waiting] = errors.FloodWaitError(request=None, capture=3600)
    result = collect(settings, clients=fake.by_account(settings), now=NOW)
    assert all(c.status == "ok" for c in result.channels), [(c.username, c.reason) for c in result.channels]
    assert {c.username for c in result.channels if c.account == waiting} == set()
    others = {c.username: c.account for c in result.channels if c.username not in plan[waiting]}
    assert all(account == choose_account(name, ACCOUNTS) for name, account in others.items())  # untouched
    state = health(tmp_path, waiting)
    assert (state["status"], state["until"]) == ("flood_wait", (NOW + dt.timedelta(seconds=3600)).isoformat())
    assert accounts.plan(settings, NOW + dt.timedelta(minutes=30))[waiting] == []

    # After `until`, the account is back in rotation and reads its own channels again.
    fake.trouble.clear()
    back = collect(settings, clients=fake.by_account(settings), now=NOW + dt.timedelta(hours=2))
    assert {c.username for c in back.channels if c.account == waiting} == set(plan[waiting])
    assert all(c.status == "ok" for c in back.channels)
    assert accounts.plan(settings, NOW + dt.timedelta(hours=2)) == plan


def test_a_short_flood_wait_stays_with_its_account_and_asks_for_a_retry(tmp_path: Path) -> None:
    settings, fake = multi_settings(tmp_path), Accounts(world_with_channels())
    plan = assign(CHANNELS, ACCOUNTS)
    fake.trouble["acct_a"] = errors.FloodWaitError(request=None, capture=120)  # under account_flood_threshold
    result = collect(settings, clients=fake.by_account(settings), now=NOW)
    waited = {c.username for c in result.channels if c.status == "flood_wait"}
    assert waited == set(plan["acct_a"]) and result.retry_needed
    assert all(c.account == "acct_a" for c in result.channels if c.username in waited)
    assert health(tmp_path, "acct_a") is None


def test_when_every_account_is_out_the_channel_reports_its_accounts_trouble(tmp_path: Path) -> None:
    settings, fake = multi_settings(tmp_path), Accounts(world_with_channels())
    for account in ACCOUNTS:
        fake.trouble[account] = errors.UserDeactivatedError(request=None)
    result = collect(settings, clients=fake.by_account(settings), now=NOW)
    assert all(c.status == "error" and "is out: UserDeactivatedError" in c.reason for c in result.channels)
    assert result.retry_needed and {health(tmp_path, a)["status"] for a in ACCOUNTS} == {"banned"}
    assert all(len(fake.clients[a]) == 1 for a in ACCOUNTS)  # each account built (and tried) once


def test_state_is_per_storage_root_and_a_ban_is_not_shortened_by_a_flood_wait(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    accounts.record_health(store, accounts.AccountHealth("acct_a", "banned", NOW, None, "SessionRevokedError"))
    accounts.record_health(store, accounts.AccountHealth("acct_a", "flood_wait", NOW, NOW + dt.timedelta(hours=1)))
    assert accounts.read_health(store, "acct_a").status == "banned"
    accounts.record_health(store, accounts.AccountHealth("acct_c", "flood_wait", NOW, NOW + dt.timedelta(hours=1)))
    accounts.record_health(store, accounts.AccountHealth("acct_c", "flood_wait", NOW, NOW + dt.timedelta(minutes=1)))
    assert accounts.read_health(store, "acct_c").until == NOW + dt.timedelta(hours=1)  # the longer wait stays
    assert accounts.available_accounts(store, ACCOUNTS, NOW) == ["acct_b"]
    assert accounts.available_accounts(store, ACCOUNTS, NOW + dt.timedelta(hours=1)) == ["acct_b", "acct_c"]
    (tmp_path / "_state" / "telegram" / "accounts" / "acct_b.json").write_text("{not json")
    assert accounts.available_accounts(store, ACCOUNTS, NOW) == ["acct_b"]  # unreadable: ignored


def test_collectors_of_several_accounts_read_in_parallel_and_take_turns_to_commit(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """As Airflow runs them: one collect per account at once on one root. Reading Telegram needs no lock;
    each commit waits for the writer lock (held here by another writer) instead of failing."""
    settings, fake = multi_settings(tmp_path), Accounts(world_with_channels())
    settings = dataclasses.replace(settings, telegram=dataclasses.replace(settings.telegram, commit_every=1))
    plan = assign(CHANNELS, ACCOUNTS)
    results: dict[str, Any] = {}

    def run(account: str) -> None:
        results[account] = collect(settings, clients=fake.by_account(settings), only=plan[account], prefer=account,
                                   now=NOW)

    threads = [threading.Thread(target=run, args=(a,)) for a in ACCOUNTS]
    caplog.set_level(logging.INFO, logger="storage.store")
    with Store(str(tmp_path)).writer_lock():  # another writer (a match run, say) holds the root
        for thread in threads:
            thread.start()
        def all_reading() -> bool:
            return all("GetHistoryRequest" in {r.__name__ for c in fake.clients.get(a, []) for r in c.requests}
                       for a in ACCOUNTS)

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all_reading():
            time.sleep(0.05)
        assert all_reading()
        assert not (tmp_path / "messages").exists()  # all three have read from Telegram; none has written
    for thread in threads:
        thread.join(timeout=120)
    assert all(not t.is_alive() for t in threads)
    for account in ACCOUNTS:
        assert [(c.username, c.status, c.account) for c in results[account].channels] == \
            [(n, "ok", account) for n in plan[account]]
    assert sum(stored_channels(tmp_path).values()) == 3 * len(CHANNELS)
    assert len([r for r in caplog.records if "event=store.writer_wait" in r.getMessage()]) >= len(ACCOUNTS)
    assert not (tmp_path / "_staging").exists()


def test_a_writer_gives_up_after_its_wait_limit_with_a_clear_error(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store, other = Store(str(tmp_path)), Store(str(tmp_path))
    monkeypatch.setenv("CHANWATCH_WRITER_WAIT_SECONDS", "0.3")
    started = time.monotonic()
    with store.writer_lock(), pytest.raises(BadInputError, match=r"another chanwatch writer is running.*waited 0 s"), \
            other.writer_lock():
        pass
    assert 0.25 <= time.monotonic() - started < 5
    with other.writer_lock(wait=0):  # released: the next writer gets it at once
        pass
    monkeypatch.setenv("CHANWATCH_WRITER_WAIT_SECONDS", "soon")
    with pytest.raises(BadInputError, match="CHANWATCH_WRITER_WAIT_SECONDS='soon'"), other.writer_lock():
        pass


# -- the CLI -------------------------------------------------------------------------------------------

def test_cli_collects_with_every_account_and_never_shows_their_secrets(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Accounts(world_with_channels())
    plan = assign(CHANNELS, ACCOUNTS)
    banned = max(ACCOUNTS, key=lambda a: len(plan[a]))
    fake.trouble[banned] = errors.AuthKeyUnregisteredError(request=None)
    monkeypatch.setattr(tg_client, "client_factory", fake.factory)
    config = write_config(tmp_path / "chanwatch.toml", tmp_path / "data",
                          channels=[{"username": n} for n in CHANNELS])
    config.write_text(config.read_text() + f"\n[telegram]\naccounts = {list(ACCOUNTS)!r}\n".replace("'", '"'))
    env = {k: v for a in ACCOUNTS for k, v in account_env(a).items()}
    env.update({"CHANWATCH_TELEGRAM_REQUESTS_PER_MINUTE": "100000", "CHANWATCH_TELEGRAM_DOWNLOADS_PER_MINUTE": "100000",
                "CHANWATCH_TELEGRAM_BACKFILL_DAYS": str((dt.datetime.now(dt.UTC) - DEMO_START).days + 2)})
    result = CliRunner().invoke(cli.app, ["--config", str(config), "collect"], env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.output.count(": ok via ") == len(CHANNELS)
    assert f"(after {banned} went out)" in result.output
    assert {a for a, _ in fake.built} == set(ACCOUNTS)
    assert all(fake.resolved(a) <= set(CHANNELS) for a in ACCOUNTS)
    texts = [result.output, *(p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file())]
    assert not any(secret(a) in text or f"hash-{a}" in text for a in ACCOUNTS for text in texts)

    missing = {k: v for k, v in env.items() if not k.startswith("CHANWATCH_TELEGRAM_ACCT_C_")}
    failed = CliRunner().invoke(cli.app, ["--config", str(config), "collect"], env={
        **missing, "CHANWATCH_TELEGRAM_ACCT_C_API_ID": "", "CHANWATCH_TELEGRAM_ACCT_C_API_HASH": "",
        "CHANWATCH_TELEGRAM_ACCT_C_SESSION": ""})
    assert isinstance(failed.exception, BadInputError) and "CHANWATCH_TELEGRAM_ACCT_C_SESSION" in str(failed.exception)
