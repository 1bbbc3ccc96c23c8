"""Project-level promises: the pinned stack holds together and the Airflow config carries no secrets."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_airflow_3_sdk_and_core_stack_import() -> None:
    import airflow
    import duckdb
    import pdqhash  # noqa: F401
    import pyarrow
    import telethon
    from airflow.sdk import DAG, Asset, task  # noqa: F401

    assert int(airflow.__version__.split(".")[0]) >= 3
    assert int(pyarrow.__version__.split(".")[0]) >= 20
    assert telethon.__version__ and duckdb.__version__


def test_airflow_cfg_is_minimal_and_holds_no_secrets() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "airflow.cfg")
    assert parser.get("core", "load_examples") == "False"
    secret = re.compile(r"(password|secret|fernet|api_hash|session|token)", re.I)
    for section in parser.sections():
        for key, value in parser.items(section):
            assert not secret.search(key), f"[{section}] {key} looks like a secret"
            assert "://" not in value or value.startswith("sqlite:///"), f"[{section}] {key} holds a URL"


def test_every_installed_package_is_pinned() -> None:
    from importlib.metadata import distributions

    pinned = {line.split("==")[0].lower().replace("_", "-")
              for line in (REPO / "constraints.txt").read_text().splitlines() if "==" in line}
    installed = {d.metadata["Name"].lower().replace("_", "-") for d in distributions()}
    missing = installed - pinned - {"chanwatch", "pip", "setuptools", "wheel"}
    assert not missing, f"installed but not pinned in constraints.txt: {sorted(missing)}"


def test_a_built_wheel_carries_every_file_the_packages_need(tmp_path: Path) -> None:
    """Deployments may install a wheel: templates, static files and review-DB migrations must be in it."""
    import shutil
    import subprocess
    import sys
    import zipfile

    packages = ("chanwatch", "collectors", "processing", "storage", "review")
    source = tmp_path / "src"  # a copy: a build leaves build/ and *.egg-info behind, which would mask a gap
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in packages:
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path),
                            str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = tmp_path.glob("chanwatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {str(p.relative_to(source)) for d in packages for p in (source / d).rglob("*") if p.is_file()}
    missing = sorted(shipped - names)
    assert not missing, f"left out of the wheel: {missing}"
    assert "review/templates/queue.html" in names and "storage/reviewdb/migrations/versions/" \
        "0001_initial_review_schema.py" in names
