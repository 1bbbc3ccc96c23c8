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
