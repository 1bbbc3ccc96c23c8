"""The review app's security, route by route: sessions, CSRF, roles, headers, escaping, throttling."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from review import workflow
from review.config import ReviewSettings
from review.web import create_app
from storage.reviewdb.engine import session_factory
from storage.reviewdb.models import AuditEntry, Item, User
from tests.review_app import USERS, csrf_of, login, seeded_engine
from tests.review_data import HOSTILE_TEXT, SyntheticMatch, _hex

ROLE_RANK = {None: 0, "analyst": 1, "lead": 2, "admin": 3}


def matches() -> list[SyntheticMatch]:
    entry = _hex("known-1")
    return [SyntheticMatch(1, 100, 0, "list-a", "pdq", entry, 4, "deepfake", text=HOSTILE_TEXT),
            SyntheticMatch(2, 200, 0, "list-a", "pdq", entry, 9, "deepfake", fwd_from=(1, 100)),
            SyntheticMatch(3, 300, 0, "list-b", "md5", _hex("m", 32), 0, "=HYPERLINK(\"http://x\")")]


@pytest.fixture
def engine(tmp_path: Path):
    engine = seeded_engine(tmp_path / "data", matches())
    yield engine
    engine.dispose()


def client_for(engine, settings: ReviewSettings | None = None, https: bool = False) -> TestClient:
    return TestClient(create_app(engine, settings), base_url="https://testserver" if https else "http://testserver",
                      follow_redirects=False)


def logged_in(engine, name: str | None) -> tuple[TestClient, str | None]:
    client = client_for(engine)
    if name is None:
        return client, None
    assert login(client, name).status_code == 303
    return client, csrf_of(client.get("/queue").text)


def test_no_default_accounts_and_no_login_without_password(tmp_path: Path) -> None:
    from storage.reviewdb.engine import default_url, migrate, open_engine

    engine = open_engine(default_url(tmp_path))
    migrate(engine)
    with session_factory(engine)() as s:
        assert s.scalars(select(User)).all() == []
    client = client_for(engine)
    for name, password in (("admin", "admin"), ("admin", ""), ("", "")):
        assert login(client, name, password).status_code == 401
    assert client.get("/queue").status_code == 303


def test_session_cookie_flags_and_security_headers(engine) -> None:
    client = client_for(engine, https=True)
    response = login(client, "ana")
    cookie = response.headers["set-cookie"]
    assert "cw_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie
    page = client.get("/queue")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store" and "max-age" in page.headers["strict-transport-security"]
    plain = client_for(engine)
    assert "Secure" not in login(plain, "ana").headers["set-cookie"]  # plain http on loopback: no Secure flag
    assert "<script>" not in page.text.replace('<script src="/static/app.js" defer></script>', "")


def test_hostile_message_text_is_escaped(engine) -> None:
    client, _ = logged_in(engine, "ana")
    with session_factory(engine)() as s:
        item_id = s.scalar(select(Item.id).where(Item.channel_id == 1))
    html = client.get(f"/items/{item_id}").text
    assert "&lt;script&gt;document.body.dataset.pwned" in html
    assert "<script>document" not in html and "onerror=\"alert" not in html


def test_csrf_is_required_on_every_form(engine) -> None:
    client, csrf = logged_in(engine, "lea")
    with session_factory(engine)() as s:
        item_id = s.scalar(select(Item.id))
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post(f"/items/{item_id}/claim", data=data)
        assert response.status_code == 403 and "CSRF" in response.text
    assert client.post(f"/items/{item_id}/claim", data={"csrf_token": csrf}).status_code == 303
    fresh = client_for(engine)
    fresh.get("/login")
    assert fresh.post("/login", data={"name": "ana", "password": "x", "csrf_token": "nope"}).status_code == 403


# (method, path template, least role). Every route of the app must be listed here (checked below).
ROUTES = [
    ("GET", "/", "analyst"),
    ("GET", "/queue", "analyst"),
    ("POST", "/queue/next", "analyst"),
    ("GET", "/items/{item}", "analyst"),
    ("POST", "/items/{item}/claim", "analyst"),
    ("POST", "/items/{item}/release", "analyst"),
    ("POST", "/items/{item}/decide", "analyst"),
    ("POST", "/items/{item}/reappearance", "analyst"),
    ("POST", "/items/{item}/preview", "analyst"),
    ("POST", "/items/{item}/approve", "lead"),
    ("GET", "/approvals", "lead"),
    ("GET", "/referrals", "lead"),
    ("POST", "/referrals", "lead"),
    ("GET", "/referrals/{referral}", "lead"),
    ("POST", "/referrals/{referral}/sent", "lead"),
    ("GET", "/referrals/{referral}/export.csv", "lead"),
    ("GET", "/referrals/{referral}/export.json", "lead"),
    ("GET", "/audit", "lead"),
    ("GET", "/admin/users", "admin"),
    ("POST", "/admin/users/{user}/unlock", "admin"),
    ("POST", "/logout", "analyst"),
]
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/static")}


def test_every_route_is_in_the_role_matrix(engine) -> None:
    app = create_app(engine)
    declared = set()
    for route in app.routes:
        for method in getattr(route, "methods", None) or {"GET"}:
            if method == "HEAD":
                continue
            path = re.sub(r"\{(\w+)_id\}", lambda m: "{" + m.group(1) + "}", route.path)
            path = path.replace("export.{fmt}", "export.csv")
            declared.add((method, path))
    listed = {(m, p) for m, p, _ in ROUTES} | PUBLIC
    assert declared - listed == set(), "routes without a role check in the matrix"


def _referral_id(engine) -> int:
    sessions = session_factory(engine)
    with sessions() as s:
        lea, leo = (s.scalars(select(User).where(User.name == n)).one() for n in ("lea", "leo"))
        item = s.scalars(select(Item).where(Item.channel_id == 3)).one()
        workflow.claim(s, item.id, lea, ReviewSettings())
        workflow.decide(s, item, lea, "confirm", "seen it")
        workflow.approve(s, item, leo)
        referral = workflow.create_referral(s, leo, [item.id], "Telegram")
        s.commit()
        return referral.id


@pytest.mark.parametrize("role", [None, "analyst", "lead", "admin"])
def test_each_route_allows_its_roles_and_denies_the_rest(engine, role: str | None) -> None:
    referral = _referral_id(engine)
    name = {None: None, "analyst": "ana", "lead": "lea", "admin": "adam"}[role]
    with session_factory(engine)() as s:
        item = s.scalar(select(Item.id).where(Item.channel_id == 1))
        user = s.scalar(select(User.id).where(User.name == "ben"))
    client, csrf = logged_in(engine, name)
    for method, template, least in ROUTES:  # /logout is last: it ends the session
        path = template.format(item=item, referral=referral, user=user)
        response = client.get(path) if method == "GET" else client.post(path, data={"csrf_token": csrf or ""})
        where = f"{method} {path} as {role}"
        if role is None:
            assert response.status_code == 303 and response.headers["location"] == "/login", where
        elif ROLE_RANK[role] >= ROLE_RANK[least]:
            assert response.status_code in (200, 303, 409), f"{where}: {response.status_code}"
        else:
            assert response.status_code == 403, f"{where}: {response.status_code}"


def test_login_lockout_through_the_form(engine) -> None:
    client = client_for(engine, ReviewSettings(max_failed_logins=3))
    for _ in range(3):
        assert login(client, "ben", "not the password").status_code == 401
    locked = login(client, "ben")
    assert locked.status_code == 401 and "locked" in locked.text
    admin, csrf = logged_in(engine, "adam")
    with session_factory(engine)() as s:
        ben = s.scalar(select(User.id).where(User.name == "ben"))
    assert admin.post(f"/admin/users/{ben}/unlock", data={"csrf_token": csrf}).status_code == 303
    assert login(client, "ben").status_code == 303


def test_referral_export_has_the_fields_and_defuses_formulas(engine) -> None:
    referral = _referral_id(engine)
    client, _ = logged_in(engine, "leo")
    csv_text = client.get(f"/referrals/{referral}/export.csv").text
    header, row = csv_text.strip().splitlines()
    for column in ("reference_id", "message_url", "channel", "category", "hash_type", "first_seen"):
        assert column in header.split(",")
    assert "'=HYPERLINK" in row and "https://t.me/fake_channel_3/300" in row
    data = client.get(f"/referrals/{referral}/export.json").json()
    assert data["items"][0]["hash_type"] == "md5" and data["items"][0]["reference_id"].endswith("-001")
    with session_factory(engine)() as s:
        assert s.scalar(select(AuditEntry.action).order_by(AuditEntry.seq.desc()).limit(1)) == "export_referral"


def test_preview_is_blurred_first_and_each_reveal_is_logged(engine) -> None:
    client, csrf = logged_in(engine, "ana")
    with session_factory(engine)() as s:
        item_id = s.scalar(select(Item.id).where(Item.channel_id == 1))
    plain = client.get(f"/items/{item_id}").text
    assert "<iframe" not in plain
    blurred = client.post(f"/items/{item_id}/preview", data={"csrf_token": csrf, "mode": "blurred"}).text
    assert 'class="frame blurred"' in blurred and "https://t.me/fake_channel_1/100?embed=1" in blurred
    revealed = client.post(f"/items/{item_id}/preview", data={"csrf_token": csrf, "mode": "revealed"}).text
    assert 'class="frame revealed"' in revealed
    with session_factory(engine)() as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.item_id == item_id)).all()
    assert actions == ["preview_blurred", "preview_revealed"]


def test_users_exist_for_every_role() -> None:
    assert set(USERS.values()) == {"analyst", "lead", "admin"}
