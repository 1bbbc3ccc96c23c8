"""Helpers for the review app's tests: a seeded database, a served app, and logging in like a browser."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import Engine

from review import accounts
from review.config import ReviewSettings
from storage.reviewdb.engine import default_url, migrate, open_engine, session_factory
from storage.reviewdb.sync import sync_matches
from storage.store import Store
from tests.review_data import KNOWN_USERNAMES, SyntheticMatch, channel_name, write_datasets

PASSWORD = "review test password"
USERS = {"ana": "analyst", "ben": "analyst", "lea": "lead", "leo": "lead", "adam": "admin"}
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def seeded_engine(root: Path, matches: list[SyntheticMatch], url: str | None = None) -> Engine:
    """A migrated review database with USERS and the given matches synced."""
    write_datasets(root, matches)
    engine = open_engine(url or default_url(root))
    migrate(engine)
    sessions = session_factory(engine)
    with sessions() as s:
        for name, role in USERS.items():
            accounts.add_user(s, name, role, PASSWORD, ReviewSettings())
        s.commit()
    basis = "public channel re-sharing deepfakes; approved by the lead on 2026-09-01"
    sync_matches(Store(str(root)), sessions, {name: basis for name in (channel_name(1), *KNOWN_USERNAMES.values())})
    return engine


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


def login(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    form = client.get("/login")
    return client.post("/login", data={"name": name, "password": password, "csrf_token": csrf_of(form.text)})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(app, port: int | None = None) -> Iterator[str]:
    """Run the app with uvicorn on 127.0.0.1 in a thread; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("review app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
