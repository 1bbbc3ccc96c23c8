"""Copy new rows of the `matches` dataset into the review database, grouped by media item.

Idempotent: a match already copied (same `match_id`) is skipped, so re-running changes nothing.
The message context an analyst needs (text, date, channel, forward chain, the media's SHA-256) is
copied in with the item, so the app never reads Parquet while serving a page. A new item whose
hash was already confirmed on another item is a *reappearance*: it is linked to that decision and
goes to the top of the queue.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import and_, func, insert, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from storage.objectstore import connect_duckdb
from storage.reviewdb import audit
from storage.reviewdb.models import Item, Match
from storage.schemas import CHANNELS, MATCHES, MEDIA, MESSAGES
from storage.store import Store

log = logging.getLogger("chanwatch.review.sync")
CONFIRMED = ("confirmed", "approved", "referred")
FORWARD_DEPTH = 5
CHUNK = 5000


@dataclass
class SyncResult:
    counts: dict[str, int] = field(default_factory=dict)


def _files(store: Store, spec: Any) -> list[str]:
    return [str(p) for p in store.list_files(spec)]


def _context(store: Store, keys: pa.Table) -> dict[tuple[int, int], dict[str, Any]]:
    """Message text, date, URL and forward source for each (channel_id, message_id) in `keys`."""
    files = _files(store, MESSAGES)
    if not files or keys.num_rows == 0:
        return {}
    con = connect_duckdb(store.root)
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("wanted", keys)
        rows = con.sql("SELECT m.channel_id, m.message_id, m.date, m.text, m.url, m.fwd_from_channel_id, "
                       "m.fwd_from_message_id, m.fwd_from_name FROM read_parquet($files, hive_partitioning = false, "
                       "union_by_name = true) m SEMI JOIN wanted w USING (channel_id, message_id)",
                       params={"files": files}).to_arrow_table().to_pylist()
    finally:
        con.close()
    return {(r["channel_id"], r["message_id"]): r for r in rows}


def _channels(store: Store) -> dict[int, dict[str, Any]]:
    """Each channel's latest snapshot: username and title."""
    files = _files(store, CHANNELS)
    if not files:
        return {}
    con = connect_duckdb(store.root)
    try:
        rows = con.sql("SELECT channel_id, arg_max(username, snapshot_date) AS username, "
                       "arg_max(title, snapshot_date) AS title FROM read_parquet($files, hive_partitioning = false, "
                       "union_by_name = true) GROUP BY channel_id", params={"files": files}).to_arrow_table()
    finally:
        con.close()
    return {r["channel_id"]: r for r in rows.to_pylist()}


def _media_sha256(store: Store, keys: pa.Table) -> dict[tuple[int, int, int], str]:
    files = _files(store, MEDIA)
    if not files or keys.num_rows == 0:
        return {}
    con = connect_duckdb(store.root)
    try:
        con.register("wanted", keys)
        rows = con.sql("SELECT channel_id, message_id, media_index, sha256 FROM read_parquet($files, "
                       "hive_partitioning = false, union_by_name = true) SEMI JOIN wanted "
                       "USING (channel_id, message_id, media_index)", params={"files": files}).fetchall()
    finally:
        con.close()
    return {(c, m, i): s for c, m, i, s in rows}


def _forward_chains(store: Store, context: dict[tuple[int, int], dict[str, Any]],
                    channels: Mapping[int, Mapping[str, Any]]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """Follow forwards back through messages we hold, up to FORWARD_DEPTH hops: how the post travelled."""
    chains: dict[tuple[int, int], list[dict[str, Any]]] = {}
    known = dict(context)
    frontier = {k: v for k, v in context.items() if v.get("fwd_from_channel_id") or v.get("fwd_from_name")}
    for key in frontier:
        chains[key] = []
    current = {k: k for k in frontier}  # chain owner -> message whose forward source we look at next
    for _ in range(FORWARD_DEPTH):
        wanted = {(known[m]["fwd_from_channel_id"], known[m]["fwd_from_message_id"])
                  for m in current.values() if known.get(m, {}).get("fwd_from_channel_id")
                  and known[m].get("fwd_from_message_id")}
        wanted -= set(known)
        if wanted:
            table = pa.table({"channel_id": pa.array([w[0] for w in wanted], pa.int64()),
                              "message_id": pa.array([w[1] for w in wanted], pa.int64())})
            known.update(_context(store, table))
        following: dict[tuple[int, int], tuple[int, int]] = {}
        for owner, msg in current.items():
            row = known.get(msg)
            if not row or not (row.get("fwd_from_channel_id") or row.get("fwd_from_name")):
                continue
            src = (row.get("fwd_from_channel_id"), row.get("fwd_from_message_id"))
            channel = channels.get(src[0] or -1, {})
            chains[owner].append({
                "channel_id": src[0], "message_id": src[1], "name": row.get("fwd_from_name"),
                "username": channel.get("username"),
                "url": known[src]["url"] if src in known else None,
                "date": known[src]["date"].isoformat() if src in known and known[src]["date"] else None,
            })
            if src in known and src != msg:
                following[owner] = src
        current = following
        if not current:
            break
    return chains


def _confirmed_hashes(session: Session, entry_keys: set[tuple[str, str]], sha256s: set[str]) -> dict[Any, int]:
    """Earliest confirmed item per (signal_type, entry_hash) and per media SHA-256 among those given."""
    found: dict[Any, int] = {}
    entries = sorted(entry_keys)
    for start in range(0, len(entries), 500):
        chunk = entries[start:start + 500]
        rows = session.execute(
            select(Match.signal_type, Match.entry_hash, Item.id).join(Item)
            .where(Item.status.in_(CONFIRMED), or_(*(and_(Match.signal_type == signal, Match.entry_hash == entry)
                                                     for signal, entry in chunk)))
            .order_by(Item.id)).all()
        for signal, entry_hash, item_id in rows:
            found.setdefault((signal, entry_hash), item_id)
    shas = sorted(sha256s)
    for start in range(0, len(shas), 500):
        rows = session.execute(select(Item.media_sha256, Item.id).where(
            Item.status.in_(CONFIRMED), Item.media_sha256.in_(shas[start:start + 500])).order_by(Item.id)).all()
        for sha, item_id in rows:
            found.setdefault(sha, item_id)
    return found


def sync_matches(store: Store, sessions: sessionmaker[Session], allowlist_basis: Mapping[str, str],
                 now: dt.datetime | None = None) -> SyncResult:
    """Copy matches not yet in the database; returns counts (matches_seen, matches_new, items_new, reappearances)."""
    now = now or dt.datetime.now(dt.UTC)
    matches = store.read(MATCHES)
    result = SyncResult({"matches_seen": matches.num_rows, "matches_new": 0, "items_new": 0, "reappearances": 0})
    if matches.num_rows == 0:
        return result
    with sessions() as session:
        known = set(session.scalars(select(Match.match_id)))
        if known:
            matches = matches.filter(pc.invert(pc.is_in(matches["match_id"], pa.array(sorted(known)))))
        if matches.num_rows == 0:
            log.info("review sync: nothing new", extra={"counts": result.counts})
            return result
        rows = sorted(matches.to_pylist(), key=lambda r: (r["channel_id"], r["message_id"], r["media_index"],
                                                         r["distance"] if r["distance"] is not None else -1))
        by_media: dict[tuple[int, int, int], list[dict[str, Any]]] = {}
        for r in rows:
            by_media.setdefault((r["channel_id"], r["message_id"], r["media_index"]), []).append(r)
        existing = _existing_items(session, list(by_media))
        fresh = [k for k in by_media if k not in existing]
        keys = pa.table({"channel_id": pa.array([k[0] for k in fresh], pa.int64()),
                         "message_id": pa.array([k[1] for k in fresh], pa.int64()),
                         "media_index": pa.array([k[2] for k in fresh], pa.int32())})
        context = _context(store, keys.select(["channel_id", "message_id"]))
        channels = _channels(store)
        chains = _forward_chains(store, context, channels)
        shas = _media_sha256(store, keys)
        confirmed = _confirmed_hashes(session, {(r["signal_type"], r["entry_hash"]) for r in rows},
                                      set(shas.values()))
        new_items = []
        for key in fresh:
            group = by_media[key]
            msg = context.get(key[:2], {})
            channel = channels.get(key[0], {})
            username = channel.get("username")
            earlier = [confirmed[k] for k in [*((g["signal_type"], g["entry_hash"]) for g in group), shas.get(key)]
                       if k in confirmed]
            new_items.append({
                "channel_id": key[0], "message_id": key[1], "media_index": key[2],
                "media_kind": group[0]["media_kind"], "channel_username": username,
                "channel_title": channel.get("title"),
                "allowlist_basis": allowlist_basis.get((username or "").lower()),
                "message_url": group[0]["message_url"] or msg.get("url"),
                "message_date": msg.get("date") or group[0]["date"], "message_text": msg.get("text"),
                "forward_chain": chains.get(key[:2]) or None, "media_sha256": shas.get(key),
                "first_matched_at": min(g["matched_at"] for g in group),
                "best_distance": min(g["distance"] or 0 for g in group),
                "priority": 1 if earlier else 0, "reappearance_of_id": min(earlier) if earlier else None,
                "status": "new",
            })
        ids = dict(existing)
        for start in range(0, len(new_items), CHUNK):
            chunk = new_items[start:start + CHUNK]
            for row in session.execute(insert(Item).returning(Item.id, Item.channel_id, Item.message_id,
                                                              Item.media_index, sort_by_parameter_order=True),
                                       chunk):
                ids[(row.channel_id, row.message_id, row.media_index)] = row.id
        match_rows = [{
            "match_id": r["match_id"], "item_id": ids[(r["channel_id"], r["message_id"], r["media_index"])],
            "signal_type": r["signal_type"], "distance": r["distance"], "threshold": r["threshold"],
            "query_match_percent": r["query_match_percent"], "compared_match_percent": r["compared_match_percent"],
            "media_hash": r["media_hash"], "list_name": r["list_name"], "list_version": r["list_version"],
            "entry_id": r["entry_id"], "entry_hash": r["entry_hash"], "category": r["category"],
            "matched_at": r["matched_at"]} for r in rows]
        for start in range(0, len(match_rows), CHUNK):
            session.execute(insert(Match), match_rows[start:start + CHUNK])
        _refresh_best_distance(session, [ids[k] for k in existing])
        reappearances = [i for i in new_items if i["reappearance_of_id"]]
        for item in reappearances:
            item_id = ids[(item["channel_id"], item["message_id"], item["media_index"])]
            audit.record(session, "system", "reappearance", item_id=item_id,
                         detail={"earlier_item_id": item["reappearance_of_id"]}, at=now)
        result.counts.update(matches_new=len(match_rows), items_new=len(new_items),
                             reappearances=len(reappearances))
        audit.record(session, "system", "sync", detail=dict(result.counts), at=now)
        session.commit()
        if len(new_items) >= 1000:  # fresh statistics keep the planner on the queue's order indexes
            session.execute(text("ANALYZE"))
            session.commit()
    log.info("review sync: %d new matches, %d new items, %d reappearances", result.counts["matches_new"],
             result.counts["items_new"], result.counts["reappearances"], extra={"counts": result.counts})
    return result


def _existing_items(session: Session, keys: list[tuple[int, int, int]]) -> dict[tuple[int, int, int], int]:
    found: dict[tuple[int, int, int], int] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        # an OR of equalities: SQLite answers it with one index search per key, a row-value IN with a scan
        rows = session.execute(select(Item.id, Item.channel_id, Item.message_id, Item.media_index).where(or_(*(
            and_(Item.channel_id == c, Item.message_id == m, Item.media_index == i) for c, m, i in chunk)))).all()
        found.update({(r.channel_id, r.message_id, r.media_index): r.id for r in rows})
    return found


def _refresh_best_distance(session: Session, item_ids: list[int]) -> None:
    """An item that gained a closer match (a new list version) moves up when sorted by distance."""
    for start in range(0, len(item_ids), 500):
        chunk = item_ids[start:start + 500]
        best = (select(func.min(func.coalesce(Match.distance, 0))).where(Match.item_id == Item.id)
                .scalar_subquery())
        session.execute(update(Item).where(Item.id.in_(chunk)).values(best_distance=best))


__all__ = ["SyncResult", "sync_matches"]
