"""A throwaway PostgreSQL server for tests: initdb into a temp dir, `postgres` on 127.0.0.1, stop and remove.

The binaries are Debian's (`.ci/run` installs the `postgresql` package when missing); nothing is faked. The
server trusts every local connection, keeps nothing durable (fsync=off) and lives only as long as the test
session. PostgreSQL refuses to run as root, so under root (as here and in CI) initdb, postgres and pg_ctl run
as the unprivileged `postgres` user (else `nobody`), in a cluster dir that user owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

SUPERUSER = "chanwatch"
INSTALL_HINT = ("PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found: install the Debian "
                "package `postgresql` (.ci/run does this when it is missing), or set CHANWATCH_PG_BINDIR.")
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "64MB",
    "log_min_messages": "warning",
}


class PgUnavailable(RuntimeError):
    """No usable PostgreSQL server binaries on this machine."""


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres: $CHANWATCH_PG_BINDIR, `pg_config --bindir`, or the
    newest /usr/lib/postgresql/*/bin. (Debian's pg_config comes with libpq-dev and names a bindir even when
    the server package is absent, so each candidate is checked.)"""
    candidates: list[Path] = []
    if os.environ.get("CHANWATCH_PG_BINDIR"):
        candidates.append(Path(os.environ["CHANWATCH_PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(path).parent.name))

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise PgUnavailable(f"{INSTALL_HINT} Looked in: {', '.join(map(str, candidates)) or 'nothing'}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as_user() -> pwd.struct_passwd | None:
    """The account to run the server as when we are root (postgres refuses root); None when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PgUnavailable("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


@dataclass
class PgServer:
    """One PostgreSQL cluster in its own temp dir. Use `start()` / `stop()`, or as a context manager."""

    base: Path | None = None
    port: int = 0
    bindir: Path = field(default_factory=find_bindir)
    user: pwd.struct_passwd | None = field(default_factory=_run_as_user)
    proc: subprocess.Popen[bytes] | None = None
    startup_seconds: float = 0.0

    # --- paths and URLs
    @property
    def datadir(self) -> Path:
        assert self.base is not None
        return self.base / "data"

    @property
    def logfile(self) -> Path:
        assert self.base is not None
        return self.base / "postgres.log"

    def url(self, dbname: str = "postgres") -> str:
        """A SQLAlchemy URL for database `dbname` on this server (psycopg 3 driver)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq connection string, for psycopg directly."""
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={dbname} connect_timeout=5"

    # --- process plumbing
    def _env(self) -> dict[str, str]:
        env = {"PATH": f"{self.bindir}:/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
        if self.user is not None:
            env["HOME"] = str(self.base)
        return env

    def _popen_kwargs(self) -> dict[str, object]:
        kwargs: dict[str, object] = {"env": self._env(), "cwd": self.base, "stdin": subprocess.DEVNULL}
        if self.user is not None:
            kwargs.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        return kwargs

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                                **self._popen_kwargs())  # type: ignore[call-overload]
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def _log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # --- lifecycle
    def start(self, timeout: float = 60) -> PgServer:
        """initdb, start postgres on a free 127.0.0.1 port and wait until it accepts connections."""
        if self.base is not None:
            raise RuntimeError("this PgServer is already started")
        t0 = time.perf_counter()
        parent = Path(tempfile.gettempdir())
        if self.user is not None and not _traversable_by_others(parent):
            parent = Path("/tmp")  # the server's user must be able to reach its own data dir
        self.base = Path(tempfile.mkdtemp(prefix="chanwatch-pg-", dir=parent))
        self.base.chmod(0o755)
        if self.user is not None:
            os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
        try:
            self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER, "--auth=trust",
                      "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions")
            last_error = ""
            for _attempt in range(3):  # a free port can be taken between free_port() and the bind: retry
                self.port = self.port or free_port()
                last_error = self._start_postgres(timeout)
                if not last_error:
                    self.startup_seconds = time.perf_counter() - t0
                    return self
                if "Address already in use" not in self._log_tail():
                    break
                self.port = 0
            raise RuntimeError(f"PostgreSQL did not start: {last_error}\n--- log:\n{self._log_tail()}")
        except BaseException:
            self.stop()
            raise

    def _start_postgres(self, timeout: float) -> str:
        """Start the postmaster; return "" once it accepts connections, else why not (after killing it)."""
        settings = [arg for k, v in SERVER_SETTINGS.items() for arg in ("-c", f"{k}={v}")]
        with open(self.logfile, "ab") as log:
            if self.user is not None:
                os.chown(self.logfile, self.user.pw_uid, self.user.pw_gid)
            self.proc = subprocess.Popen(  # type: ignore[call-overload]
                [str(self.bindir / "postgres"), "-D", str(self.datadir), "-h", "127.0.0.1", "-p", str(self.port),
                 "-k", str(self.base), *settings],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._popen_kwargs())
        deadline = time.monotonic() + timeout
        error = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                error = f"postgres exited with {self.proc.returncode}"
                break
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                    conn.execute("select 1")
                return ""
            except psycopg.OperationalError as exc:
                error = str(exc).strip()
                time.sleep(0.05)
        else:
            error = f"not accepting connections after {timeout:.0f} s: {error}"
        self._kill()
        return error

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        """`pg_ctl stop -m immediate`; SIGKILL the process group if that fails; remove the cluster dir."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    self._run(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "immediate",
                              "-w", "-t", "15", timeout=30)
                    self.proc.wait(timeout=15)
                except (RuntimeError, subprocess.SubprocessError, OSError):
                    pass
            self._kill()
        finally:
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)
                self.base = None

    def __enter__(self) -> PgServer:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- databases
    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a fresh name unless given) and return its SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"unsafe database name: {name!r}")
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database even if connections (e.g. an undisposed engine's pool) are still open."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"unsafe database name: {name!r}")
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
