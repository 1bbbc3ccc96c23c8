"""The `recheck` step: is each referred item still online? Record removals and due re-notices.

Referred messages are re-fetched through the collector's Telegram access (allowlisted public
channels only, read-only). A message that is gone, or whose channel is gone, gets `removed_at`
(the first check that found it gone). Items still online past the re-notification interval get a
recorded re-notice, and the batch is written as a CSV for the operator to send.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections import Counter
from dataclasses import dataclass, field

from chanwatch.settings import Settings
from chanwatch.steps.online_check import OnlineTarget, check_online
from chanwatch.steps.review_db import open_review_db
from review import workflow
from storage.files import write_bytes_atomic
from storage.objectstore import StoragePath, open_root
from storage.reviewdb.engine import session_factory

log = logging.getLogger("chanwatch.recheck")


@dataclass
class RecheckResult:
    counts: dict[str, int] = field(default_factory=dict)
    renotice_file: StoragePath | None = None


def run_recheck(settings: Settings, *, client_factory=None, now: dt.datetime | None = None) -> RecheckResult:
    """Check every open referred item once; idempotent apart from the check time it records."""
    now = now or dt.datetime.now(dt.UTC)
    sessions = session_factory(open_review_db(settings))
    with sessions() as s:
        pending = [(ri.id, OnlineTarget(ri.item.channel_id, ri.item.message_id, ri.item.channel_username))
                   for ri in workflow.open_referral_items(s)]
    statuses = check_online(settings, [t for _, t in pending], client_factory=client_factory) if pending else []
    counts = Counter({"checked": len(pending), "removed_new": 0, "renotices": 0})
    renotice_rows = []
    with sessions() as s:
        from storage.reviewdb.models import ReferralItem

        for (ri_id, _), status in zip(pending, statuses, strict=True):
            counts[status.status] += 1
            if status.status == "unknown":  # could not check (flood wait, network): keep the last known state
                continue
            ri = s.get(ReferralItem, ri_id)
            if workflow.record_check(s, ri, status.status, now, status.detail):
                counts["removed_new"] += 1
        for ri in workflow.due_renotices(s, settings.review, now):
            workflow.record_renotice(s, ri, now)
            counts["renotices"] += 1
            renotice_rows.append({"reference_id": ri.reference_id, "referral": ri.referral.reference,
                                  "message_url": ri.item.message_url, "first_notice": ri.notices[0].sent_at.isoformat(),
                                  "notices": len(ri.notices) + 1, "renotice_at": now.isoformat()})
        s.commit()
    result = RecheckResult(dict(counts))
    if renotice_rows:
        result.renotice_file = _write_renotices(open_root(settings.storage_root), renotice_rows, now)
    log.info("event=recheck.done %s", " ".join(f"{k}={v}" for k, v in sorted(result.counts.items())))
    return result


def _write_renotices(root: StoragePath, rows: list[dict], now: dt.datetime) -> StoragePath:
    path = root / "_state" / "review" / "notices" / f"renotice-{now:%Y%m%dT%H%M%SZ}.csv"
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomic(path, text.getvalue().encode("utf-8"))
    return path
