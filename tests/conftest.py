"""Shared fixtures: an isolated storage root and config, a way to run the real CLI, a real PostgreSQL server
and a real headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.exports import write_config

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from tests.pg_server import PgServer
    from tests.s3_server import S3Server

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


# --- A real PostgreSQL server (tests/pg_server.py) and a real headless Chromium (tests/browser.py).
# Both fail rather than skip when the machine lacks them: .ci/run installs the Debian packages. Their modules
# are imported only by these fixtures, so tests that use neither do not load psycopg or Playwright.

@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL cluster for the whole session, on a free 127.0.0.1 port."""
    from tests.pg_server import PgServer, PgUnavailable

    try:
        server = PgServer()
    except PgUnavailable as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing:
        pytest.fail(missing, pytrace=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server: PgServer) -> str:
    """SQLAlchemy URL `postgresql+psycopg://chanwatch@127.0.0.1:PORT/chanwatch_test` of a session-wide database."""
    return pg_server.create_database("chanwatch_test")


@pytest.fixture
def pg_database_factory(pg_server: PgServer) -> Iterator[Callable[[], str]]:
    """Call it to get the URL of a new, empty database; all are dropped when the test ends."""
    names: list[str] = []

    def make() -> str:
        url = pg_server.create_database()
        names.append(url.rsplit("/", 1)[1])
        return url

    yield make
    for name in names:
        pg_server.drop_database(name)


@pytest.fixture
def pg_database(pg_database_factory: Callable[[], str]) -> str:
    """SQLAlchemy URL of a new, empty database for this test alone (dropped afterwards)."""
    return pg_database_factory()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium under Playwright (sync API), shared by one test module.

    Not by the session: while Playwright's sync API lives it keeps an event loop running in this
    thread, and every later test that calls `asyncio.run` (the Telegram fake, the collector) fails.
    """
    from playwright.sync_api import sync_playwright

    from tests.browser import BrowserUnavailable, find_chromium, launch

    try:
        executable = find_chromium()
    except BrowserUnavailable as exc:
        executable = ""
        missing = str(exc)
    if not executable:
        pytest.fail(missing, pytrace=False)
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh browser context; `page.console_errors` lists console errors and uncaught exceptions."""
    from tests.browser import DEFAULT_TIMEOUT_MS, record_errors

    context = browser.new_context()
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        new_page = context.new_page()
        record_errors(new_page)
        yield new_page
    finally:
        context.close()


# --- A real S3-compatible server (moto's standalone server, tests/s3_server.py) on 127.0.0.1.

@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from tests.s3_server import S3Server

    server = S3Server().start()
    saved = {k: os.environ.get(k) for k in server.env()}
    os.environ.update(server.env())  # in-process code (s3fs, botocore) reads the standard AWS variables
    try:
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket on the session's S3 server."""
    return s3_server.create_bucket()
