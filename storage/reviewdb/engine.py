"""Open the review database and bring its schema up to date with Alembic.

The URL comes from `[review] database_url` (or CHANWATCH_REVIEW_DATABASE_URL, the place for a
PostgreSQL password); the default is a SQLite file under the storage root's `_state/review/`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from processing.errors import BadInputError

MIGRATIONS = Path(__file__).with_name("migrations")


def default_url(storage_root: Path) -> str:
    return f"sqlite:///{(storage_root / '_state' / 'review' / 'review.db').resolve()}"


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def open_engine(url: str) -> Engine:
    """An engine for the URL; SQLite gets WAL and foreign keys, and its folder is created."""
    try:
        parsed = make_url(url)
    except Exception:
        raise BadInputError("review database URL cannot be parsed (check [review] database_url)") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_size=10, max_overflow=20, pool_pre_ping=True)
    raise BadInputError(f"review database {safe_url(url)}: only SQLite and PostgreSQL are supported")


def migrate(engine: Engine) -> None:
    """Apply every Alembic migration not yet applied (idempotent)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
