"""Import hash lists dropped into an inbox folder (what the `chanwatch_hashlists` DAG runs).

Layout: `<inbox>/<list_name>/` holds the list's current files (one file, or one vPDQ file per
video). Its category comes from `<list_name>/.category` (one line), else `[hashlists]
default_category`; bare 64-hex lists name their signal in `<list_name>/.signal`. A folder whose
files are exactly the active version's is skipped, so re-runs import nothing. A bad file fails with
FILE:LINE, and that list's active version stays as it was.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from chanwatch.settings import Settings
from chanwatch.steps.hashlists import import_hash_list, list_files, list_versions
from processing.errors import BadInputError

log = logging.getLogger("chanwatch.hashlists")


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in list_files(folder):
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _read_hint(folder: Path, name: str) -> str | None:
    path = folder / name
    return path.read_text(encoding="utf-8").strip() or None if path.is_file() else None


def import_inbox(settings: Settings) -> dict[str, Any]:
    inbox = Path(settings.hashlists.inbox)
    counts = {"lists_seen": 0, "imported": 0, "unchanged": 0}
    if not inbox.is_dir():
        log.info("event=hashlists.inbox_missing inbox=%s", inbox)
        return counts
    active = {r["list_name"]: r["source_sha256"] for r in list_versions(settings) if r["state"] == "active"}
    failures = []
    for folder in sorted(p for p in inbox.iterdir() if p.is_dir() and not p.name.startswith(".")):
        counts["lists_seen"] += 1
        if active.get(folder.name) == _folder_digest(folder):
            counts["unchanged"] += 1
            continue
        category = _read_hint(folder, ".category") or settings.hashlists.default_category
        try:
            result = import_hash_list(settings, folder, folder.name, category, signal=_read_hint(folder, ".signal"))
        except BadInputError as exc:
            failures.append(str(exc))
            log.error("event=hashlists.rejected list=%s error=%r", folder.name, str(exc))
            continue
        counts["imported"] += 1
        log.info("event=hashlists.imported list=%s version=%d entries=%d", folder.name, result.version,
                 result.parsed.entry_count)
    log.info("event=hashlists.inbox %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    if failures:
        raise BadInputError("; ".join(failures))
    return counts
