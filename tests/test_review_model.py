"""The review database's rules, run against SQLite and against a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from review import accounts, workflow
from review.config import ReviewSettings
from storage.reviewdb import audit
from storage.reviewdb.engine import default_url, migrate, open_engine, session_factory
from storage.reviewdb.models import AuditEntry, Item, Match, Notice, User
from storage.reviewdb.sync import sync_matches
from storage.store import Store
from tests.review_data import HOSTILE_TEXT, SyntheticMatch, _hex, channel_name, write_datasets

SETTINGS = ReviewSettings()
PASSWORD = "a long enough password"


@dataclass
class Env:
    engine: Engine
    sessions: sessionmaker[Session]
    root: Path
    dialect: str

    def sync(self, now: dt.datetime | None = None):
        return sync_matches(Store(str(self.root)), self.sessions, {channel_name(1): "basis text"}, now=now)

    def user(self, s: Session, name: str) -> User:
        return s.scalars(select(User).where(User.name == name)).one()


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    url = default_url(tmp_path / "data") if request.param == "sqlite" else request.getfixturevalue("pg_database")
    engine = open_engine(url)
    migrate(engine)
    migrate(engine)  # idempotent
    sessions = session_factory(engine)
    with sessions() as s:
        for name, role in (("ana", "analyst"), ("ben", "analyst"), ("lea", "lead"), ("leo", "lead")):
            accounts.add_user(s, name, role, PASSWORD, SETTINGS)
        s.commit()
    yield Env(engine, sessions, tmp_path / "data", request.param)
    engine.dispose()


def basic_matches() -> list[SyntheticMatch]:
    entry = _hex("known-1")
    return [
        SyntheticMatch(1, 100, 0, "list-a", "pdq", entry, 4, "deepfake", text=HOSTILE_TEXT),
        SyntheticMatch(1, 100, 0, "list-b", "pdq", entry, 4, "ncii", text=HOSTILE_TEXT),
        SyntheticMatch(2, 200, 0, "list-a", "pdq", entry, 12, "deepfake", fwd_from=(1, 100)),
        SyntheticMatch(3, 300, 1, "list-a", "md5", _hex("other", 32), 0, "ncii"),
    ]


def test_sync_groups_by_media_copies_context_and_is_idempotent(env: Env) -> None:
    write_datasets(env.root, basic_matches())
    first = env.sync()
    assert first.counts == {"matches_seen": 4, "matches_new": 4, "items_new": 3, "reappearances": 0}
    again = env.sync()
    assert again.counts["matches_new"] == 0 and again.counts["items_new"] == 0
    with env.sessions() as s:
        items = s.scalars(select(Item).order_by(Item.channel_id)).all()
        assert [len(i.matches) for i in items] == [2, 1, 1]
        first_item = items[0]
        assert first_item.message_text == HOSTILE_TEXT
        assert first_item.allowlist_basis == "basis text"
        assert first_item.channel_username == channel_name(1)
        assert first_item.message_url == f"https://t.me/{channel_name(1)}/100"
        forwarded = items[1]
        assert forwarded.forward_chain[0]["username"] == channel_name(1)
        assert forwarded.forward_chain[0]["url"] == f"https://t.me/{channel_name(1)}/100"
        assert s.scalar(select(Match.item_id).where(Match.list_name == "list-b")) == first_item.id


def _claimed(env: Env, s: Session, item_id: int, name: str) -> Item:
    return workflow.claim(s, item_id, env.user(s, name), SETTINGS)


def test_two_analysts_cannot_claim_the_same_item_until_the_claim_lapses(env: Env) -> None:
    write_datasets(env.root, basic_matches())
    env.sync()
    with env.sessions() as s:
        item_id = s.scalar(select(Item.id).order_by(Item.id))
        _claimed(env, s, item_id, "ana")
        s.commit()
    with env.sessions() as s:
        with pytest.raises(workflow.WorkflowError, match="being reviewed by ana"):
            _claimed(env, s, item_id, "ben")
        s.rollback()
        later = workflow.now_utc() + dt.timedelta(minutes=SETTINGS.claim_minutes + 1)
        item = workflow.claim(s, item_id, env.user(s, "ben"), SETTINGS, now=later)
        assert item.claimed_by.name == "ben"


def test_decisions_need_a_claim_and_a_reason_and_escalations_go_to_a_lead(env: Env) -> None:
    write_datasets(env.root, basic_matches())
    env.sync()
    with env.sessions() as s:
        item = s.scalars(select(Item).order_by(Item.id)).first()
        ana = env.user(s, "ana")
        with pytest.raises(workflow.WorkflowError, match="claim the item"):
            workflow.decide(s, item, ana, "confirm", "looks right")
        _claimed(env, s, item.id, "ana")
        with pytest.raises(workflow.WorkflowError, match="needs a reason"):
            workflow.decide(s, item, ana, "confirm", "  ")
        workflow.decide(s, item, ana, "escalate", "unsure about the crop")
        assert item.status == "escalated"
        with pytest.raises(workflow.WorkflowError, match="a lead reviews it"):
            workflow.claim(s, item.id, env.user(s, "ben"), SETTINGS)
        lea = env.user(s, "lea")
        workflow.claim(s, item.id, lea, SETTINGS)
        workflow.decide(s, item, lea, "confirm", "same face, same background")
        assert (item.status, item.decided_by.name) == ("confirmed", "lea")
        s.commit()


def test_four_eyes_referral_notices_removal_and_stats(env: Env) -> None:
    write_datasets(env.root, basic_matches())
    env.sync()
    t0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
    with env.sessions() as s:
        items = s.scalars(select(Item).order_by(Item.id)).all()
        lea, leo = env.user(s, "lea"), env.user(s, "leo")
        for item in items[:2]:
            workflow.claim(s, item.id, lea, SETTINGS, now=t0)
            workflow.decide(s, item, lea, "confirm", "matches the listed item", now=t0)
        with pytest.raises(workflow.WorkflowError, match="four-eyes"):
            workflow.approve(s, items[0], lea)
        with pytest.raises(workflow.WorkflowError, match="only a lead"):
            workflow.approve(s, items[0], env.user(s, "ana"))
        for item in items[:2]:
            workflow.approve(s, item, leo, now=t0)
        with pytest.raises(workflow.WorkflowError, match="not approved"):
            workflow.create_referral(s, leo, [items[0].id, items[2].id], "Telegram")
        referral = workflow.create_referral(s, leo, [i.id for i in items[:2]], "Telegram abuse", now=t0)
        workflow.mark_sent(s, referral, leo, now=t0)
        s.commit()
        assert [ri.reference_id for ri in referral.items] == [f"{referral.reference}-001", f"{referral.reference}-002"]
        assert {i.status for i in items[:2]} == {"referred"}
        with pytest.raises(workflow.WorkflowError, match="already sent"):
            workflow.mark_sent(s, referral, leo)

        first, second = workflow.open_referral_items(s)
        t1 = t0 + dt.timedelta(hours=6)
        assert workflow.record_check(s, first, "deleted", t1) is True
        assert workflow.record_check(s, first, "deleted", t1 + dt.timedelta(hours=1)) is False
        assert first.removed_at == t1
        workflow.record_check(s, second, "online", t1)
        assert workflow.due_renotices(s, SETTINGS, t1) == []
        t2 = t0 + dt.timedelta(hours=SETTINGS.renotify_hours, minutes=1)
        assert workflow.due_renotices(s, SETTINGS, t2) == [second]
        workflow.record_renotice(s, second, t2)
        assert workflow.due_renotices(s, SETTINGS, t2) == []
        s.commit()
        kinds = [n.kind for n in s.scalars(select(Notice).where(Notice.referral_item_id == second.id)
                                           .order_by(Notice.id))]
        assert kinds == ["initial", "renotice"]
        stats = workflow.removal_stats(s)
        assert (stats.referred, stats.removed, stats.open) == (2, 1, 1)
        assert stats.removal_rate == 0.5 and stats.median_hours_to_removal == 6.0


def test_reappearance_of_confirmed_material_goes_to_the_top_and_links_back(env: Env) -> None:
    write_datasets(env.root, basic_matches())
    env.sync()
    with env.sessions() as s:
        first = s.scalars(select(Item).order_by(Item.id)).first()
        lea = env.user(s, "lea")
        workflow.claim(s, first.id, lea, SETTINGS)
        workflow.decide(s, first, lea, "confirm", "known item")
        s.commit()
    entry = _hex("known-1")
    write_datasets(env.root, [SyntheticMatch(9, 900, 0, "list-a", "pdq", entry, 2, "deepfake")], file_tag="b")
    assert env.sync().counts["reappearances"] == 1
    with env.sessions() as s:
        new = s.scalars(select(Item).where(Item.channel_id == 9)).one()
        assert (new.priority, new.reappearance_of_id) == (1, first.id)
        from review.queue import QueueFilter, queue_page

        page = queue_page(s, QueueFilter(), None, 10)
        assert page.items[0].id == new.id
        ben, leo = env.user(s, "ben"), env.user(s, "leo")
        workflow.confirm_reappearance(s, new, ben)
        assert new.status == "confirmed" and f"item {first.id}" in new.decision_reason
        workflow.approve(s, new, leo)
        assert new.status == "approved"


def test_queue_filters_sorts_and_keyset_pages_cover_every_item_once(env: Env) -> None:
    from review.queue import QueueFilter, queue_page
    from tests.review_data import many_matches

    write_datasets(env.root, many_matches(230, channels=7))
    env.sync()
    with env.sessions() as s:
        for sort in ("distance", "oldest", "newest"):
            seen, cursor, pages = [], None, 0
            while True:
                page = queue_page(s, QueueFilter(sort=sort), cursor, 50)
                seen += page.items
                pages += 1
                cursor = page.next_cursor
                if not cursor:
                    break
            assert len(seen) == 230 == len({i.id for i in seen}) and pages == 5
            if sort == "distance":
                assert [i.best_distance for i in seen] == sorted(i.best_distance for i in seen)
            if sort == "newest":
                assert [i.first_matched_at for i in seen] == sorted((i.first_matched_at for i in seen), reverse=True)
        only_md5 = queue_page(s, QueueFilter(signal_type="md5"), None, 500)
        assert only_md5.total == len(only_md5.items) == 58
        assert all(any(m.signal_type == "md5" for m in i.matches) for i in only_md5.items)
        channel = queue_page(s, QueueFilter(channel="@" + channel_name(1003)), None, 500)
        assert channel.total > 0 and {i.channel_id for i in channel.items} == {1003}
        listed = queue_page(s, QueueFilter(list_name="list-b", category="ncii"), None, 500)
        assert all(any(m.list_name == "list-b" and m.category == "ncii" for m in i.matches) for i in listed.items)


def test_audit_log_is_append_only_and_tampering_is_detected(env: Env) -> None:
    with env.sessions() as s:
        for n in range(5):
            audit.record(s, "ana", "test", reason=f"entry {n}")
        s.commit()
        checked, problems = audit.verify_chain(s)
        assert checked == 9 and problems == []  # 4 user_added + 5
    for statement in ("UPDATE audit_log SET reason = 'edited' WHERE seq = 6", "DELETE FROM audit_log WHERE seq = 7"):
        with env.engine.connect() as c, pytest.raises(DBAPIError, match="append-only"):
            c.execute(text(statement))
            c.commit()
    # Someone with the database owner's rights bypasses the triggers: the chain still shows it.
    with env.engine.begin() as c:
        if env.dialect == "postgresql":
            c.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            c.execute(text("DROP TRIGGER audit_log_no_update"))
            c.execute(text("DROP TRIGGER audit_log_no_delete"))
        c.execute(text("UPDATE audit_log SET reason = 'edited' WHERE seq = 6"))
        c.execute(text("DELETE FROM audit_log WHERE seq = 8"))
    with env.sessions() as s:
        _, problems = audit.verify_chain(s)
        assert [(p.seq, p.problem.split(" (")[0]) for p in problems] == [
            (6, "entry hash does not match its contents"),
            (9, "sequence jumps from 7 to 9"),
            (9, "previous-hash link broken"),
        ]


def test_login_lockout_and_address_throttle(env: Env) -> None:
    settings = ReviewSettings(max_failed_logins=3, address_max_failures=5)
    with env.sessions() as s:
        for _ in range(3):
            with pytest.raises(accounts.LoginRefused, match="Wrong"):
                accounts.authenticate(s, "ana", "wrong password!", "10.0.0.1", settings)
        with pytest.raises(accounts.LoginRefused, match="locked"):
            accounts.authenticate(s, "ana", PASSWORD, "10.0.0.2", settings)
        later = workflow.now_utc() + dt.timedelta(minutes=settings.lockout_minutes + 1)
        assert accounts.authenticate(s, "ana", PASSWORD, "10.0.0.2", settings, now=later).name == "ana"
        for name in ("x1", "x2"):
            with pytest.raises(accounts.LoginRefused, match="Wrong"):
                accounts.authenticate(s, name, "guess guess guess", "10.0.0.1", settings)
        with pytest.raises(accounts.LoginRefused, match="this address"):
            accounts.authenticate(s, "ben", PASSWORD, "10.0.0.1", settings)
        assert accounts.authenticate(s, "ben", PASSWORD, "10.0.0.3", settings).name == "ben"
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
        assert actions.count("login_failed") == 5 and "account_locked" in actions and "login_throttled" in actions


def test_accounts_refuse_weak_or_duplicate_or_unknown_roles(env: Env) -> None:
    from processing.errors import BadInputError

    with env.sessions() as s:
        with pytest.raises(BadInputError, match="too short"):
            accounts.add_user(s, "carl", "analyst", "short", SETTINGS)
        with pytest.raises(BadInputError, match="role"):
            accounts.add_user(s, "carl", "root", PASSWORD, SETTINGS)
        with pytest.raises(BadInputError, match="already exists"):
            accounts.add_user(s, "ana", "analyst", PASSWORD, SETTINGS)
        stored = env.user(s, "ana").password_hash
        assert stored.startswith("$argon2") and PASSWORD not in stored


def test_concurrent_writers_keep_one_unbroken_audit_chain(env: Env) -> None:
    """Eight writers at once: none fails, none forks the chain (SQLite: the app's BEGIN IMMEDIATE)."""
    from concurrent.futures import ThreadPoolExecutor

    def write(n: int) -> None:
        for k in range(10):
            with env.sessions() as s:
                if env.dialect == "sqlite":
                    s.execute(text("BEGIN IMMEDIATE"))
                audit.record(s, f"writer{n}", "test", reason=str(k))
                s.commit()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))
    with env.sessions() as s:
        checked, problems = audit.verify_chain(s)
    assert checked == 4 + 80 and problems == []
