"""Shared fixtures: an isolated storage root and config, and a way to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.exports import write_config

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "chanwatch.cli"]


@dataclass
class Workspace:
    """A temporary place with its own storage root, config and scratch dir."""

    root: Path
    storage: Path
    config: Path

    def run(self, *args: str, check: bool = False, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run `chanwatch --config ... ARGS` as a real process."""
        full_env = {**os.environ, "TMPDIR": str(self.root / "tmp"), "COLUMNS": "200", **(env or {})}
        result = subprocess.run([*CLI, "--config", str(self.config), *args], cwd=self.root, env=full_env,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "tmp").mkdir()
    storage = tmp_path / "data"
    return Workspace(tmp_path, storage, write_config(tmp_path / "chanwatch.toml", storage))
