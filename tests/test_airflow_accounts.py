"""The collect DAG with two Telegram accounts: a mapped task and a pool per account, credentials from each
account's connection, and a banned account whose channels are collected by the other one in the same run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from processing.assignment import assign
from tests.test_airflow import BIN, CONFIG, LOGICAL_DATE, airflow_env, runner, table

ACCOUNTS = ("acct_a", "acct_b")
API_IDS = {"acct_a": 1001, "acct_b": 1002}
CHANNELS = ("fake_news_demo", "fake_source_demo", "fake_group_demo")
SECRET = "SECRET-SESSION-STRING-{}"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("airflow_accounts")
    (root / "airflow").mkdir()
    config = CONFIG.format(root=root).replace("[telegram]\n", f"[telegram]\naccounts = {json.dumps(ACCOUNTS)}\n")
    (root / "chanwatch.toml").write_text(config)
    pools = {f"telegram_api_{a}": {"slots": 1, "description": f"account {a}", "include_deferred": False}
             for a in ACCOUNTS}
    (root / "pools.json").write_text(json.dumps(pools))
    banned = API_IDS[next(a for a, names in assign(CHANNELS, ACCOUNTS).items() if "fake_news_demo" in names)]
    env = {k: v for k, v in airflow_env(root).items() if k != "CHANWATCH_FAKE_FLOOD"}
    env.update({"CHANWATCH_FAKE_BANNED_API_IDS": str(banned), "CHANWATCH_FAKE_CLIENT_LOG": str(root / "clients.log")})
    for account, api_id in API_IDS.items():
        env[f"AIRFLOW_CONN_TELEGRAM_{account.upper()}"] = json.dumps({
            "conn_type": "generic", "login": str(api_id), "password": f"hash-{account}",
            "extra": {"session": SECRET.format(account)}})
    for command in (["airflow", "db", "migrate"], ["airflow", "pools", "import", str(root / "pools.json")]):
        done = subprocess.run([str(BIN / command[0]), *command[1:]], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    return root, env


def test_one_mapped_task_and_pool_per_account(home: tuple[Path, dict[str, str]]) -> None:
    _, env = home
    bag = runner(env, "dagbag")
    assert bag["import_errors"] == {}
    tasks = bag["dags"]["chanwatch_collect"]["tasks"]
    assert {t: tasks[t]["pool"] for t in tasks if t.startswith("collect_channel")} == {
        "collect_channel_acct_a": "telegram_api_acct_a", "collect_channel_acct_b": "telegram_api_acct_b"}
    assert {"channels_acct_a", "channels_acct_b", "collected"} <= set(tasks)


def test_a_banned_account_hands_its_channels_to_the_other_in_the_same_run(home: tuple[Path, dict[str, str]]) -> None:
    root, env = home
    plan = assign(CHANNELS, ACCOUNTS)
    run = runner(env, "test", "chanwatch_collect", LOGICAL_DATE)
    assert run["state"] == "success", run
    collects = [ti for ti in run["task_instances"] if ti["task_id"].startswith("collect_channel_")]
    assert sorted((ti["task_id"], ti["state"]) for ti in collects) == sorted(
        (f"collect_channel_{a}", "success") for a in ACCOUNTS for _ in plan[a])
    assert all(ti["try_number"] == 1 for ti in collects)  # failed over within the task, no retry needed
    messages = table(root, "messages")
    assert {cid: sum(r["channel_id"] == cid for r in messages) for cid in {r["channel_id"] for r in messages}} == {
        1888000001: 40, 1888000004: 1}
    banned = next(a for a in ACCOUNTS if "fake_news_demo" in plan[a])
    state = json.loads((root / "data" / "_state" / "telegram" / "accounts" / f"{banned}.json").read_text())
    assert state["status"] == "banned" and "AuthKeyUnregisteredError" in state["reason"]
    built = (root / "clients.log").read_text().split()
    assert set(built) == {str(i) for i in API_IDS.values()}, built  # each account's connection reached its client
    for path in (root / "data").rglob("*"):
        if path.is_file():
            assert not any(SECRET.format(a).encode() in path.read_bytes() for a in ACCOUNTS), path


def test_the_next_run_plans_without_the_banned_account(home: tuple[Path, dict[str, str]]) -> None:
    """After the run above: the banned account's mapped task expands over nothing; the other reads everything."""
    root, env = home
    before = (root / "clients.log").read_text().split()
    run = runner(env, "test", "chanwatch_collect", "2026-11-30T13:00:00+00:00")
    assert run["state"] == "success", run
    banned = next(a for a in ACCOUNTS if "fake_news_demo" in assign(CHANNELS, ACCOUNTS)[a])
    other = next(a for a in ACCOUNTS if a != banned)
    states = {(ti["task_id"], ti["state"]) for ti in run["task_instances"] if ti["task_id"].startswith("collect_")}
    assert ("collect_channel_" + other, "success") in states
    assert not any(task == "collect_channel_" + banned and state == "success" for task, state in states), states
    assert ("collected", "success") in {(ti["task_id"], ti["state"]) for ti in run["task_instances"]}
    built = (root / "clients.log").read_text().split()[len(before):]
    assert set(built) == {str(API_IDS[other])}, built  # the banned account's client is not even built
