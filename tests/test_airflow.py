"""The DAGs: parsed by a DagBag, and run end to end with dag.test() on SQLite against the fake Telegram."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO

BIN = Path(sys.executable).parent
LOGICAL_DATE = "2026-11-30T12:00:00+00:00"
CONFIG = """
[storage]
root = "{root}/data"

[telegram]
requests_per_minute = 100000
downloads_per_minute = 100000
backfill_days = 3650

[hashlists]
inbox = "{root}/inbox"
""" + "".join(f"""
[[channels]]
username = "{name}"
basis = "Airflow test fixture"
approved_by = "tests"
approved_at = 2026-11-23
""" for name in ("fake_news_demo", "fake_source_demo", "fake_group_demo"))


def airflow_env(root: Path) -> dict[str, str]:
    """Everything Airflow and chanwatch read, pointed at `root` (and the fake Telegram)."""
    return {**os.environ, "AIRFLOW_HOME": str(root / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root}/airflow/airflow.db",
            "CHANWATCH_CONFIG": str(root / "chanwatch.toml"), "PYTHONPATH": str(REPO),
            "CHANWATCH_TELEGRAM_CLIENT_FACTORY": "tests.airflow_fake:client_factory",
            "CHANWATCH_FAKE_FLOOD": f"fake_source_demo:3:{root}/flood.marker",
            "PATH": f"{BIN}:{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("airflow")
    (root / "airflow").mkdir()
    (root / "chanwatch.toml").write_text(CONFIG.format(root=root))
    env = airflow_env(root)
    for command in (["airflow", "db", "migrate"], ["airflow", "pools", "import", str(REPO / "ops/pools.json")]):
        done = subprocess.run([str(BIN / command[0]), *command[1:]], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    return root, env


def runner(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "tests.airflow_runner", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (done.stdout[-3000:], done.stderr[-5000:])
    return json.loads(lines[-1][len("RESULT "):])


def table(root: Path, dataset: str) -> list[dict]:
    files = sorted(str(p) for p in (root / "data" / dataset).rglob("*.parquet"))
    return duckdb.sql(f"SELECT * FROM read_parquet({files}, hive_partitioning = false, union_by_name = true) "
                      "ORDER BY ALL").to_arrow_table().to_pylist() if files else []


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (root / "data").rglob("*.parquet")}


def test_every_dag_parses_fast_with_its_schedule_pool_and_limits(home: tuple[Path, dict[str, str]]) -> None:
    _, env = home
    bag = runner(env, "dagbag")
    assert bag["import_errors"] == {}
    dags = bag["dags"]
    assert set(dags) == {"chanwatch_collect", "chanwatch_match", "chanwatch_hashlists", "chanwatch_aggregate",
                         "chanwatch_recheck"}
    collect = dags["chanwatch_collect"]
    assert collect["timetable"] == "DeltaDataIntervalTimetable" and collect["max_active_runs"] == 1
    assert collect["tasks"]["collect_channel"]["pool"] == "telegram_api"
    assert dags["chanwatch_match"]["timetable"] == "AssetTriggeredTimetable"
    assert "delta=datetime.timedelta(seconds=3600)" in collect["summary"]  # hourly by default
    assert all("expression='0 0 * * *'" in dags[d]["summary"] for d in ("chanwatch_aggregate", "chanwatch_recheck"))
    assert all(d["max_active_runs"] == 1 and not d["catchup"] for d in dags.values())
    assert all(seconds < 1.0 for seconds in bag["parse_s"].values()), bag["parse_s"]


def test_collect_and_match_run_end_to_end_and_again_change_nothing(home: tuple[Path, dict[str, str]]) -> None:
    root, env = home
    run = runner(env, "test", "chanwatch_collect", LOGICAL_DATE)
    assert run["state"] == "success", run
    channels = {ti["map_index"]: ti for ti in run["task_instances"] if ti["task_id"] == "collect_channel"}
    assert [ti["state"] for ti in channels.values()] == ["success"] * 3
    flooded, others = channels[1], [channels[0], channels[2]]  # fake_source_demo hit a 3 s FloodWait
    assert flooded["try_number"] == 2 and all(ti["try_number"] == 1 for ti in others)
    assert all(flooded["start"] > ti["end"] for ti in others), "the other channels finished while it waited"
    messages = table(root, "messages")
    by_channel = {cid: sum(r["channel_id"] == cid for r in messages) for cid in {r["channel_id"] for r in messages}}
    assert by_channel == {1888000001: 40, 1888000004: 1}  # the group was refused
    photo = next(r for r in table(root, "media") if r["message_id"] == 6 and r["channel_id"] == 1888000001)

    inbox = root / "inbox" / "demo-known"
    inbox.mkdir(parents=True)
    (inbox / "list.txt").write_text(f"md5 {photo['md5']}\n")  # the fake's small photos have low PDQ quality
    assert runner(env, "test", "chanwatch_hashlists", LOGICAL_DATE)["state"] == "success"
    assert runner(env, "test", "chanwatch_match", LOGICAL_DATE)["state"] == "success"
    matches = table(root, "matches")
    assert [(m["message_id"], m["distance"], m["list_name"]) for m in matches] == [(6, 0, "demo-known")]

    before = digests(root)
    for dag_id in ("chanwatch_collect", "chanwatch_hashlists", "chanwatch_match"):
        assert runner(env, "test", dag_id, "2026-11-30T13:00:00+00:00")["state"] == "success"
    assert digests(root) == before, "a second run changes no dataset file"
    assert runner(env, "test", "chanwatch_aggregate", LOGICAL_DATE)["state"] == "success"


def test_match_fills_the_review_queue_and_recheck_records_the_removal(home: tuple[Path, dict[str, str]]) -> None:
    """After the run above: the match DAG synced its match into the review queue; refer it, delete the post
    in the fake Telegram, and the recheck DAG records the removal."""
    from sqlalchemy import select

    from review import accounts, workflow
    from review.config import ReviewSettings
    from storage.reviewdb.engine import default_url, open_engine, session_factory
    from storage.reviewdb.models import Item, ReferralItem

    root, env = home
    engine = open_engine(default_url(root / "data"))
    sessions = session_factory(engine)
    with sessions() as s:
        item = s.scalars(select(Item)).one()
        assert (item.channel_username, item.message_id, item.allowlist_basis[:7]) == ("fake_news_demo", 6, "Airflow")
        analyst, lead = (accounts.add_user(s, n, r, "airflow test password", ReviewSettings())
                         for n, r in (("ana", "analyst"), ("lea", "lead")))
        workflow.claim(s, item.id, analyst, ReviewSettings())
        workflow.decide(s, item, analyst, "confirm", "listed file")
        workflow.approve(s, item, lead)
        workflow.mark_sent(s, workflow.create_referral(s, lead, [item.id], "Telegram"), lead)
        s.commit()
    still_online = runner(env, "test", "chanwatch_recheck", LOGICAL_DATE)
    assert still_online["state"] == "success", still_online
    removed = runner({**env, "CHANWATCH_FAKE_DELETED": "1888000001:6"}, "test", "chanwatch_recheck",
                     "2026-11-30T13:00:00+00:00")
    assert removed["state"] == "success", removed
    with sessions() as s:
        referred = s.scalars(select(ReferralItem)).one()
        assert referred.removal_status == "deleted" and referred.removed_at is not None
        assert referred.last_check_status == "deleted"
    engine.dispose()
