"""Checkpoints and run reports under `_state/`: small JSON documents, written atomically.

Callers write a checkpoint only after `Transaction.commit()` returned, so a checkpoint never
claims data that is not durably stored.
"""

from __future__ import annotations

from typing import Any

import orjson

from storage.files import write_bytes_atomic
from storage.store import Store


def _path(store: Store, kind: str, key: str):
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key)
    return store.state_path("checkpoints", kind, f"{safe}.json")


def read_checkpoint(store: Store, kind: str, key: str) -> dict[str, Any] | None:
    path = _path(store, kind, key)
    return orjson.loads(path.read_bytes()) if path.exists() else None


def write_checkpoint(store: Store, kind: str, key: str, value: dict[str, Any]) -> None:
    write_bytes_atomic(_path(store, kind, key), orjson.dumps(value, option=orjson.OPT_INDENT_2))


def write_run_report(store: Store, run_id: str, report: dict[str, Any]) -> None:
    """Keep what a run did (counts, skipped records and why) for operators to audit."""
    write_bytes_atomic(store.state_path("runs", f"{run_id}.json"),
                       orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
