"""Steps on the review database shared by the CLI, the demo and the Airflow tasks: open, sync, verify."""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from chanwatch.settings import Settings
from processing.errors import BadInputError
from storage.objectstore import is_local, open_root
from storage.reviewdb import audit
from storage.reviewdb.engine import default_url, migrate, open_engine, session_factory
from storage.reviewdb.sync import SyncResult, sync_matches
from storage.store import Store

log = logging.getLogger("chanwatch.review")


def review_url(settings: Settings) -> str:
    """The configured database, else SQLite under a local storage root. A root on object storage
    cannot hold a SQLite file (it needs a real filesystem and one host), so it needs a server URL."""
    if settings.review_database_url:
        return settings.review_database_url
    root = open_root(settings.storage_root)
    if not is_local(root):
        raise BadInputError(f"storage root {settings.storage_root} is on object storage: set the review "
                            "database to a server (CHANWATCH_REVIEW_DATABASE_URL=postgresql+psycopg://...)")
    return default_url(root)


def open_review_db(settings: Settings) -> Engine:
    """The review database, migrated to the current schema."""
    engine = open_engine(review_url(settings))
    migrate(engine)
    return engine


def allowlist_basis(settings: Settings) -> dict[str, str]:
    """Why each channel is monitored, as the evidence page shows it."""
    return {c.username.lower(): f"{c.basis} (approved by {c.approved_by} on {c.approved_at:%Y-%m-%d})"
            for c in settings.allowlist}


def sync_review(settings: Settings, engine: Engine | None = None) -> SyncResult:
    """Copy new matches into the review queue (idempotent)."""
    engine = engine or open_review_db(settings)
    return sync_matches(Store(settings.storage_root), session_factory(engine), allowlist_basis(settings))


def verify_audit(settings: Settings) -> tuple[int, list[audit.ChainProblem]]:
    engine = open_review_db(settings)
    with session_factory(engine)() as session:
        return audit.verify_chain(session)


__all__ = ["open_review_db", "review_url", "sync_review", "verify_audit"]
