"""Gather the report's figures: DuckDB over the aggregates and matches, SQL over the review database.

Everything here returns plain rows (lists of dicts), so the charts, the HTML and the CSVs are all
made from the same numbers.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass, field
from typing import Any

import duckdb
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage.objectstore import connect_duckdb
from storage.schemas import CHANNEL_DAILY, CHANNELS, FORWARD_EDGES, MATCHES, MATCHES_DAILY
from storage.store import Store

TOP = 15
FLAGGED_LIMIT = 500


@dataclass
class ReportFigures:
    since: dt.date | None
    until: dt.date
    summary: dict[str, Any] = field(default_factory=dict)
    matches_by_day: list[dict[str, Any]] = field(default_factory=list)
    top_channels: list[dict[str, Any]] = field(default_factory=list)
    top_categories: list[dict[str, Any]] = field(default_factory=list)
    forward_edges: list[dict[str, Any]] = field(default_factory=list)
    review_outcomes: list[dict[str, Any]] = field(default_factory=list)
    referrals: list[dict[str, Any]] = field(default_factory=list)
    hours_to_removal: list[float] = field(default_factory=list)
    flagged_items: list[dict[str, Any]] = field(default_factory=list)


def _files(store: Store, spec: Any) -> list[str]:
    return [str(p) for p in store.list_files(spec)]


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return con.sql(sql, params=params).to_arrow_table().to_pylist()


def dataset_figures(store: Store, since: dt.date | None, figures: ReportFigures) -> None:
    """Activity, matches over time, top channels and categories, and the top forward edges."""
    con = connect_duckdb(store.root)
    try:
        con.execute("SET TimeZone = 'UTC'")
        start = since or dt.date(1970, 1, 1)
        names = {}
        if files := _files(store, CHANNELS):
            names = {r["channel_id"]: r["username"] for r in _rows(con, (
                "SELECT channel_id, arg_max(username, snapshot_date) AS username FROM read_parquet($f, "
                "hive_partitioning = false, union_by_name = true) GROUP BY channel_id"), {"f": files})}
        activity = {"channels": 0, "messages": 0, "media": 0, "media_hashed": 0, "forwarded_messages": 0}
        if files := _files(store, CHANNEL_DAILY):
            row = _rows(con, (
                "SELECT count(DISTINCT channel_id) AS channels, coalesce(sum(messages), 0) AS messages, "
                "coalesce(sum(media), 0) AS media, coalesce(sum(media_hashed), 0) AS media_hashed, "
                "coalesce(sum(forwarded_messages), 0) AS forwarded_messages FROM read_parquet($f, "
                "hive_partitioning = false, union_by_name = true) WHERE day >= $start"),
                {"f": files, "start": start})[0]
            activity = {k: int(v) for k, v in row.items()}
        figures.summary.update(activity)
        if files := _files(store, MATCHES_DAILY):
            src = "read_parquet($f, hive_partitioning = false, union_by_name = true)"
            figures.matches_by_day = _rows(con, (
                f"SELECT day, signal_type, sum(matches)::BIGINT AS matches FROM {src} WHERE day >= $start "
                "GROUP BY ALL ORDER BY day, signal_type"), {"f": files, "start": start})
            figures.top_categories = _rows(con, (
                f"SELECT category, sum(matches)::BIGINT AS matches, sum(media)::BIGINT AS media FROM {src} "
                "WHERE day >= $start GROUP BY ALL ORDER BY matches DESC, category LIMIT $top"),
                {"f": files, "start": start, "top": TOP})
        if files := _files(store, MATCHES):
            src = "read_parquet($f, hive_partitioning = false, union_by_name = true)"
            figures.top_channels = _rows(con, (
                f"SELECT channel_id, count(*) AS matches, count(DISTINCT (message_id, media_index)) AS media, "
                f"min(date) AS first_post, max(date) AS last_post FROM {src} WHERE date >= $start "
                "GROUP BY ALL ORDER BY matches DESC, channel_id LIMIT $top"), {"f": files, "start": start, "top": TOP})
            for row in figures.top_channels:
                row["channel"] = names.get(row["channel_id"]) or str(row["channel_id"])
            totals = _rows(con, (
                f"SELECT count(*) AS matches, count(DISTINCT (channel_id, message_id, media_index)) AS matched_media, "
                f"count(DISTINCT list_name) AS lists FROM {src} WHERE date >= $start"),
                {"f": files, "start": start})[0]
            figures.summary.update({k: int(v) for k, v in totals.items()})
        else:
            figures.summary.update(matches=0, matched_media=0, lists=0)
        if files := _files(store, FORWARD_EDGES):
            figures.forward_edges = _rows(con, (
                "SELECT source_key, source_channel_id, source_name, target_channel_id, forwards, "
                "forwards_with_media, forwards_matched, first_date, last_date FROM read_parquet($f, "
                "hive_partitioning = false, union_by_name = true) WHERE last_date >= $start "
                "ORDER BY forwards_matched DESC, forwards DESC, source_key, target_channel_id LIMIT $top"),
                {"f": files, "start": start, "top": TOP})
            for edge in figures.forward_edges:
                edge["source"] = (names.get(edge["source_channel_id"]) or edge["source_name"]
                                  or str(edge["source_channel_id"]))
                edge["target"] = names.get(edge["target_channel_id"]) or str(edge["target_channel_id"])
    finally:
        con.close()


def review_figures(engine: Engine | None, since: dt.date | None, figures: ReportFigures) -> None:
    """Review outcomes, referrals, time to removal, reappearances and the flagged items."""
    from storage.reviewdb.models import Item, Match, Referral, ReferralItem

    summary = figures.summary
    summary.update(review_items=0, confirmed=0, reappearances=0, referred=0, removed=0, removal_rate=None,
                   median_hours_to_removal=None)
    if engine is None:
        return
    start = dt.datetime.combine(since, dt.time(), dt.UTC) if since else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    with Session(engine) as s:
        counts = dict(s.execute(select(Item.status, func.count()).where(Item.first_matched_at >= start)
                                .group_by(Item.status)).all())
        order = ("new", "escalated", "confirmed", "approved", "referred", "rejected")
        figures.review_outcomes = [{"status": k, "items": int(counts.get(k, 0))} for k in order]
        summary["review_items"] = sum(counts.values())
        summary["confirmed"] = sum(counts.get(k, 0) for k in ("confirmed", "approved", "referred"))
        summary["reappearances"] = s.scalar(select(func.count(Item.id)).where(
            Item.reappearance_of_id.is_not(None), Item.first_matched_at >= start)) or 0
        rows = s.execute(select(Referral.reference, Referral.recipient, Referral.sent_at, ReferralItem.reference_id,
                                ReferralItem.removed_at, ReferralItem.removal_status, Item.message_url,
                                Item.channel_username).join(ReferralItem, ReferralItem.referral_id == Referral.id)
                         .join(Item, Item.id == ReferralItem.item_id).where(Referral.created_at >= start)
                         .order_by(Referral.id, ReferralItem.id)).all()
        figures.referrals = [r._asdict() for r in rows]
        sent = [r for r in rows if r.sent_at is not None]
        hours = sorted((r.removed_at - r.sent_at).total_seconds() / 3600 for r in sent if r.removed_at)
        figures.hours_to_removal = hours
        summary.update(referred=len(sent), removed=len(hours),
                       removal_rate=round(len(hours) / len(sent), 3) if sent else None,
                       median_hours_to_removal=round(statistics.median(hours), 1) if hours else None)
        items = s.scalars(select(Item).where(Item.first_matched_at >= start)
                          .order_by(Item.priority.desc(), Item.best_distance, Item.id).limit(FLAGGED_LIMIT)).all()
        best = {m.item_id: m for m in s.scalars(select(Match).where(Match.item_id.in_([i.id for i in items]))
                                               .order_by(Match.item_id, Match.distance.desc()))}
        figures.flagged_items = [{
            "item": i.id, "status": i.status, "reappearance": i.reappearance_of_id is not None,
            "channel": i.channel_username or str(i.channel_id), "posted": i.message_date,
            "list": best[i.id].list_name if i.id in best else None,
            "category": best[i.id].category if i.id in best else None,
            "signal": best[i.id].signal_type if i.id in best else None,
            "distance": i.best_distance, "url": i.message_url} for i in items]


def gather(storage_root: str, review_engine: Engine | None, since: dt.date | None,
           today: dt.date | None = None) -> ReportFigures:
    figures = ReportFigures(since=since, until=today or dt.datetime.now(dt.UTC).date())
    dataset_figures(Store(storage_root), since, figures)
    review_figures(review_engine, since, figures)
    return figures


__all__ = ["ReportFigures", "gather"]
