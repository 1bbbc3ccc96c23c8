"""A real SIGKILL at any point of an import, then a re-run: no row lost, none duplicated, nothing half-visible."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import CLI, Workspace
from tests.exports import export_doc, message, write_export

MESSAGES = 60_000


@pytest.fixture(scope="module")
def big_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough messages over enough months for an import that takes a few seconds and many files."""
    folder = tmp_path_factory.mktemp("big")
    docs = [message(i, text=f"message {i} #tag{i % 7}", seconds=i * 900) for i in range(1, MESSAGES + 1)]
    return write_export(folder, export_doc(docs))


def counts(ws: Workspace) -> tuple[int, int, int, int]:
    """(rows, distinct ids, min id, max id) as a researcher would see them right now."""
    if not list((ws.storage / "messages").rglob("*.parquet")):
        return (0, 0, 0, 0)
    return duckdb.sql(f"SELECT count(*), count(DISTINCT message_id), min(message_id), max(message_id) FROM "
                      f"read_parquet('{ws.storage}/messages/**/*.parquet', hive_partitioning=true)").fetchall()[0]


def start(ws: Workspace, export: Path, fault: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(ws.root / "tmp")}
    if fault:
        env["CHANWATCH_FAULT_INJECT"] = fault
    return subprocess.Popen([*CLI, "--config", str(ws.config), "import-export", str(export)], cwd=ws.root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_all_files_readable(ws: Workspace) -> None:
    for path in ws.storage.rglob("*.parquet"):
        if "_staging" not in path.parts:
            duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()


@pytest.mark.parametrize("fault", ["stage:1", "stage:5", "commit:1", "commit:7"])
def test_kill_at_exact_points_then_rerun_completes(ws: Workspace, big_export: Path, fault: str) -> None:
    proc = start(ws, big_export, fault)
    proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    rows, distinct, _, _ = counts(ws)
    assert rows == distinct  # whatever is visible after the crash has no duplicate
    if fault.startswith("stage"):
        assert rows == 0  # nothing staged is visible before the commit
    assert_all_files_readable(ws)

    ws.run("import-export", str(big_export), check=True)
    assert counts(ws) == (MESSAGES, MESSAGES, 1, MESSAGES)
    assert not any((ws.storage / "_staging").glob("*"))


@pytest.mark.parametrize("delay", [0.3, 1.0, 2.0])
def test_kill_at_arbitrary_moments_then_rerun_completes(ws: Workspace, big_export: Path, delay: float) -> None:
    proc = start(ws, big_export)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    rows, distinct, _, _ = counts(ws)
    assert rows == distinct
    assert_all_files_readable(ws)
    ws.run("import-export", str(big_export), check=True)
    assert counts(ws) == (MESSAGES, MESSAGES, 1, MESSAGES)
    ws.run("import-export", str(big_export), check=True)  # and again: still no duplicate
    assert counts(ws) == (MESSAGES, MESSAGES, 1, MESSAGES)
