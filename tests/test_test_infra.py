"""The test infrastructure itself: a real PostgreSQL server (pg_url, pg_database) and a real headless Chromium
(browser, page) with console-error recording. The review app's tests build on these."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

# --- PostgreSQL


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def test_pg_url_is_a_real_postgresql(pg_url: str) -> None:
    assert pg_url.startswith("postgresql+psycopg://") and "@127.0.0.1:" in pg_url
    engine = _engine(pg_url)
    with engine.connect() as conn:
        version = conn.execute(sa.text("select version()")).scalar_one()
        database = conn.execute(sa.text("select current_database()")).scalar_one()
        fsync = conn.execute(sa.text("show fsync")).scalar_one()
    assert version.startswith("PostgreSQL "), version
    assert database == pg_url.rsplit("/", 1)[1] == "chanwatch_test"
    assert engine.dialect.driver == "psycopg"
    assert fsync == "off"


def _tables(url: str) -> set[str]:
    return set(sa.inspect(_engine(url)).get_table_names())


def _create_and_fill(url: str, table: str, rows: list[str]) -> None:
    with _engine(url).begin() as conn:
        conn.execute(sa.text(f"create table {table} (id serial primary key, name text not null unique)"))
        for name in rows:
            conn.execute(sa.text(f"insert into {table} (name) values (:name)"), {"name": name})


@pytest.mark.parametrize("run", [1, 2])
def test_pg_database_is_new_and_empty_for_each_test(pg_database: str, pg_url: str, run: int) -> None:
    # Both runs create the same table: the second would fail if it got the first's database back.
    assert pg_database != pg_url
    assert _tables(pg_database) == set()
    _create_and_fill(pg_database, "widgets", [f"w{run}"])
    with _engine(pg_database).connect() as conn:
        assert conn.execute(sa.text("select name from widgets")).scalars().all() == [f"w{run}"]
    assert "widgets" not in _tables(pg_url)


def test_pg_databases_are_isolated(pg_database: str, pg_database_factory: Callable[[], str]) -> None:
    other = pg_database_factory()
    assert other != pg_database
    _create_and_fill(pg_database, "items", ["a", "b"])
    assert _tables(other) == set()
    _create_and_fill(other, "items", ["c"])  # same name, no clash
    with _engine(pg_database).connect() as conn:
        assert conn.execute(sa.text("select name from items order by name")).scalars().all() == ["a", "b"]
    with _engine(other).connect() as conn:
        assert conn.execute(sa.text("select name from items")).scalars().all() == ["c"]
    # A real server: constraints are enforced.
    with pytest.raises(sa.exc.IntegrityError), _engine(other).begin() as conn:
        conn.execute(sa.text("insert into items (name) values ('c')"))


# --- Browser

PAGES: dict[str, tuple[str, bytes]] = {
    "/index.html": ("text/html; charset=utf-8", b"""<!doctype html>
<html><head><title>infra</title><script src="/app.js" defer></script></head>
<body><button id="go" type="button">Go</button><p id="out">before</p></body></html>"""),
    "/app.js": ("text/javascript", b"""
document.getElementById("go").addEventListener("click", () => {
  document.getElementById("out").textContent = "after";
});"""),
    "/broken.html": ("text/html; charset=utf-8", b"""<!doctype html>
<html><head><title>broken</title><script src="/broken.js"></script></head><body>broken</body></html>"""),
    "/broken.js": ("text/javascript", b"""
console.error("explicit console error");
throw new Error("boom from broken.js");"""),
    "/inline.html": ("text/html; charset=utf-8", b"""<!doctype html>
<html><body><p id="out">untouched</p><script>document.getElementById("out").textContent = "inline ran";</script>
</body></html>"""),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/favicon.ico":
            self.send_response(HTTPStatus.NO_CONTENT)
            self.end_headers()
            return
        if self.path not in PAGES:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        content_type, body = PAGES[self.path]
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # Like the review app: scripts only from files on this origin, never inline.
        self.send_header("Content-Security-Policy", "default-src 'self'; script-src 'self'")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_button_runs_external_script(page, site: str) -> None:
    page.goto(f"{site}/index.html")
    assert page.text_content("#out") == "before"
    page.click("#go")
    # expect() polls from Playwright's own world; page.wait_for_function("...") would need 'unsafe-eval' under
    # a strict CSP and fail with an EvalError instead of waiting.
    expect(page.locator("#out")).to_have_text("after")
    assert page.console_errors == []


def test_js_errors_are_recorded(page, site: str) -> None:
    page.goto(f"{site}/broken.html")
    page.wait_for_load_state("load")
    errors = page.console_errors
    assert any(e.startswith("console.error: explicit console error") for e in errors), errors
    assert any(e.startswith("pageerror:") and "boom from broken.js" in e for e in errors), errors


def test_inline_script_blocked_by_csp_is_recorded(page, site: str) -> None:
    page.goto(f"{site}/inline.html")
    page.wait_for_load_state("load")
    assert page.text_content("#out") == "untouched"
    assert any("Content Security Policy" in e for e in page.console_errors), page.console_errors


def test_each_page_has_a_fresh_context(page, site: str) -> None:
    assert page.context.cookies() == []
    assert page.console_errors == []
    assert len(page.context.pages) == 1
