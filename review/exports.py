"""A referral as the platform or regulator receives it: CSV and JSON with one row per item."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from storage.reviewdb.models import Referral

COLUMNS = ("reference_id", "message_url", "channel", "channel_id", "message_id", "category", "hash_type",
           "list_name", "entry_id", "distance", "posted_at", "first_seen", "confirmed_at", "approved_at")


def referral_rows(referral: Referral) -> list[dict[str, Any]]:
    rows = []
    for ri in referral.items:
        item = ri.item
        best = min(item.matches, key=lambda m: m.distance or 0) if item.matches else None
        rows.append({
            "reference_id": ri.reference_id,
            "message_url": item.message_url,
            "channel": item.channel_username,
            "channel_id": item.channel_id,
            "message_id": item.message_id,
            "category": ", ".join(sorted({m.category for m in item.matches if m.category})) or None,
            "hash_type": ", ".join(sorted({m.signal_type for m in item.matches})),
            "list_name": best.list_name if best else None,
            "entry_id": best.entry_id if best else None,
            "distance": best.distance if best else None,
            "posted_at": item.message_date.isoformat() if item.message_date else None,
            "first_seen": item.first_matched_at.isoformat(),
            "confirmed_at": item.decided_at.isoformat() if item.decided_at else None,
            "approved_at": item.approved_at.isoformat() if item.approved_at else None,
        })
    return rows


def spreadsheet_safe(value: Any) -> Any:
    """Guard spreadsheet users against formula injection from hostile text (every CSV chanwatch writes)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def referral_csv(referral: Referral) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in referral_rows(referral):
        writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
    return buf.getvalue()


def referral_json(referral: Referral) -> bytes:
    return orjson.dumps({
        "reference": referral.reference,
        "recipient": referral.recipient,
        "created_at": referral.created_at.isoformat(),
        "sent_at": referral.sent_at.isoformat() if referral.sent_at else None,
        "items": referral_rows(referral),
    }, option=orjson.OPT_INDENT_2)
