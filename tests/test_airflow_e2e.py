"""A real Airflow (API server, scheduler, DAG processor) on 127.0.0.1 with the LocalExecutor: trigger
chanwatch_collect over REST, with the metadata database on SQLite and on PostgreSQL (the production setting).

Airflow 3 opens a second, async engine on the metadata database. Left alone it would derive
`postgresql+asyncpg://` from the URL, and asyncpg is not installed: the PostgreSQL run sets
AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC to the same `postgresql+psycopg://` URL, as docs/deploy.md says.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy

from tests.conftest import REPO
from tests.test_airflow import BIN, CONFIG, airflow_env, table
from tests.test_collect_cli import API_HASH, SESSION

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, token: str | None = None, method: str = "GET", body: dict | None = None) -> dict:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def listeners() -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket on the machine (IPv4 and IPv6), from /proc."""
    found = set()
    for table_path in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table_path)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                address, port = fields[1].split(":")
                found.add((address, int(port, 16)))
    return found


def is_loopback(address_hex: str) -> bool:
    return address_hex in ("0100007F", "00000000000000000000000001000000")


def wait_for(what: str, probe, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except OSError as exc:  # not listening yet, or 404 until the DAG is parsed
            last = exc
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def metadata_rows(url: str, run_id: str) -> tuple[str, list[tuple]]:
    """From the metadata database itself: the run's state and its (task_id, map_index, state) rows."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            where = {"dag_id": "chanwatch_collect", "run_id": run_id}
            state = conn.execute(sqlalchemy.text(
                "SELECT state FROM dag_run WHERE dag_id = :dag_id AND run_id = :run_id"), where).scalar_one()
            tasks = conn.execute(sqlalchemy.text(
                "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = :dag_id AND run_id = :run_id "
                "ORDER BY task_id, map_index"), where).all()
            return state, [tuple(row) for row in tasks]
    finally:
        engine.dispose()


@pytest.mark.parametrize("metadata_db", ["sqlite", "postgresql"])
def test_a_real_airflow_runs_chanwatch_collect_triggered_over_rest(
        tmp_path: Path, metadata_db: str, request: pytest.FixtureRequest) -> None:
    started = time.monotonic()
    (tmp_path / "airflow").mkdir()
    (tmp_path / "chanwatch.toml").write_text(CONFIG.format(root=tmp_path))
    port = free_port()
    connection = {"conn_type": "generic", "login": "7654321", "password": API_HASH, "extra": {"session": SESSION}}
    env = {**airflow_env(tmp_path), "AIRFLOW_CONFIG": str(REPO / "airflow.cfg"),
           "CHANWATCH_AIRFLOW_PORT": str(port), "AIRFLOW_CONN_TELEGRAM_DEFAULT": json.dumps(connection),
           "CHANWATCH_FAKE_EXPECT_API_ID": "7654321"}
    if metadata_db == "postgresql":  # a fresh database on the session's throwaway server (only this case starts it)
        pg_url = request.getfixturevalue("pg_database")
        assert pg_url.startswith("postgresql+psycopg://")  # psycopg 3 for both of Airflow's engines
        env |= {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_url, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": pg_url}
    url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    for command in (["db", "migrate"], ["pools", "import", str(REPO / "ops/pools.json")]):
        subprocess.run([str(BIN / "airflow"), *command], env=env, check=True, capture_output=True, timeout=300)
    before = listeners()
    log = open(tmp_path / "airflow.log", "wb")  # noqa: SIM115  (kept open for the processes' lifetime)
    server = subprocess.Popen(["bash", str(REPO / "ops/run-airflow.sh")], env=env, cwd=tmp_path, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("the API server", lambda: call(f"{base}/api/v2/monitor/health"), 120)
        token = call(f"{base}/auth/token")["access_token"]
        wait_for("the DAG to be parsed", lambda: call(f"{base}/api/v2/dags/chanwatch_collect", token), 120)
        call(f"{base}/api/v2/dags/chanwatch_collect", token, "PATCH", {"is_paused": False})
        run = call(f"{base}/api/v2/dags/chanwatch_collect/dagRuns", token, "POST", {"logical_date": None})
        run_url = f"{base}/api/v2/dags/chanwatch_collect/dagRuns/{run['dag_run_id']}"
        opened = listeners() - before
        assert opened and all(is_loopback(address) for address, _ in opened), opened  # loopback only
        state = wait_for("the run to finish",
                         lambda: (s := call(run_url, token)["state"]) in ("success", "failed") and s, 300)
        tasks = call(f"{run_url}/taskInstances", token)["task_instances"]
        assert state == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tasks]
        collect = [t for t in tasks if t["task_id"] == "collect_channel"]
        assert len(collect) == 3 and {t["state"] for t in collect} == {"success"}
        # What the REST API reported is in the database we configured (PostgreSQL: no SQLite file anywhere).
        assert metadata_rows(url, run["dag_run_id"]) == (
            "success", sorted((t["task_id"], t["map_index"], t["state"]) for t in tasks))
        sqlite_files = sorted(p.name for p in tmp_path.rglob("*.db"))
        assert sqlite_files == (["airflow.db"] if metadata_db == "sqlite" else []), sqlite_files
        messages = table(tmp_path, "messages")
        assert {r["channel_id"] for r in messages} == {1888000001, 1888000004}
        assert len(messages) == 41
        logs = [p for p in (tmp_path / "airflow").rglob("*") if p.is_file() and "/logs/" in str(p)]
        task_logs = "".join(p.read_text(errors="replace") for p in logs)
        # Airflow 3 leaves job.executor_class empty, so the scheduler's own log is the record of its executor.
        loaded = re.findall(r"Loaded executor: (\S+)", (tmp_path / "airflow.log").read_text(errors="replace"))
        assert loaded and set(loaded) == {":LocalExecutor:"}, loaded
        assert "event=collect.task" in task_logs and "messages_new=40" in task_logs  # counts per step
        for path in [*tmp_path.rglob("*")]:
            if path.is_file() and path.suffix != ".db":  # the metadata DB holds the connection, as designed
                text = path.read_bytes()
                assert API_HASH.encode() not in text and SESSION.encode() not in text, path
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
    print(f"end-to-end Airflow test took {time.monotonic() - started:.0f} s")
