"""`chanwatch review add-user | verify-audit | sync` as real processes: passwords, exit codes, tampering."""

from __future__ import annotations

import os
import sqlite3
import subprocess

from tests.conftest import CLI, Workspace

PASSWORD = "cli test password"


def run(ws: Workspace, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(ws.root / "tmp")}
    return subprocess.run([*CLI, "--config", str(ws.config), *args], cwd=ws.root, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_add_user_reads_the_password_without_echo_and_refuses_bad_input(ws: Workspace) -> None:
    ok = run(ws, "review", "add-user", "ana", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n")
    assert ok.returncode == 0 and "user ana added with role analyst" in ok.stdout
    assert PASSWORD not in ok.stdout + ok.stderr
    short = run(ws, "review", "add-user", "ben", "--role", "analyst", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "password too short" in short.stderr
    role = run(ws, "review", "add-user", "ben", "--role", "root", "--password-stdin", stdin=PASSWORD + "\n")
    assert role.returncode == 2 and "role 'root'" in role.stderr
    again = run(ws, "review", "add-user", "ana", "--role", "lead", "--password-stdin", stdin=PASSWORD + "\n")
    assert again.returncode == 2 and "already exists" in again.stderr
    no_tty = run(ws, "review", "add-user", "cy", "--role", "lead", stdin="")  # asks; no answer: no account
    assert no_tty.returncode != 0
    db = sqlite3.connect(ws.storage / "_state/review/review.db")
    assert [r[0] for r in db.execute("SELECT name FROM users")] == ["ana"]
    stored = db.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_verify_audit_passes_then_names_the_tampered_entry(ws: Workspace) -> None:
    for name in ("ana", "ben", "cy"):
        run(ws, "review", "add-user", name, "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n")
    assert run(ws, "review", "sync").returncode == 0
    intact = run(ws, "review", "verify-audit")
    assert intact.returncode == 0 and "3 entries checked, chain intact" in intact.stdout
    db = sqlite3.connect(ws.storage / "_state/review/review.db")
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute("UPDATE audit_log SET detail = '{\"role\":\"admin\",\"user\":\"ben\"}' WHERE seq = 2")
    db.commit()
    tampered = run(ws, "review", "verify-audit")
    assert tampered.returncode == 1
    assert "audit entry 2: entry hash does not match its contents" in tampered.stderr and "TAMPERED" in tampered.stderr
