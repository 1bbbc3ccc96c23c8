"""The review queue: filters, sort orders and keyset paging, so page 2,000 costs what page 1 does."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Select, and_, exists, func, or_, select, tuple_
from sqlalchemy.orm import Session, selectinload

from storage.reviewdb.models import Item, Match

SORTS = ("distance", "oldest", "newest")
STATUS_FILTERS = ("open", "new", "escalated", "confirmed", "approved", "rejected", "referred", "all")


@dataclass(frozen=True)
class QueueFilter:
    status: str = "open"
    list_name: str = ""
    category: str = ""
    channel: str = ""
    signal_type: str = ""
    sort: str = "distance"

    def normalised(self) -> QueueFilter:
        return QueueFilter(status=self.status if self.status in STATUS_FILTERS else "open",
                           list_name=self.list_name.strip(), category=self.category.strip(),
                           channel=self.channel.strip().lstrip("@"), signal_type=self.signal_type.strip(),
                           sort=self.sort if self.sort in SORTS else "distance")


@dataclass
class QueuePage:
    items: list[Item]
    total: int
    next_cursor: str | None
    total_capped: bool = False
    facets: dict[str, list[str]] = field(default_factory=dict)


FEW = 500  # a match filter selecting at most this many match rows is answered from the matches' indexes


def _match_conditions(f: QueueFilter) -> list:
    conditions = []
    if f.list_name:
        conditions.append(Match.list_name == f.list_name)
    if f.category:
        conditions.append(Match.category == f.category)
    if f.signal_type:
        conditions.append(Match.signal_type == f.signal_type)
    return conditions


def _few_items(session: Session, f: QueueFilter) -> list[int] | None:
    """The item ids a selective match filter selects, or None when it selects many (more than FEW rows).

    Walking the order index with an EXISTS probe per item finds a page fast when many items match,
    but crosses every item when few or none do; then the matches' own indexes answer at once.
    """
    conditions = _match_conditions(f)
    if not conditions:
        return None
    ids = list(session.scalars(select(Match.item_id).where(*conditions).limit(FEW + 1)))
    return sorted(set(ids)) if len(ids) <= FEW else None


def _filtered(f: QueueFilter, few: list[int] | None = None) -> Select:
    query = select(Item)
    if f.status == "open":
        query = query.where(Item.status.in_(("new", "escalated")))
    elif f.status != "all":
        query = query.where(Item.status == f.status)
    match_conditions = _match_conditions(f)
    if few is not None:
        query = query.where(Item.id.in_(few))
    elif match_conditions:
        query = query.where(exists().where(Match.item_id == Item.id, *match_conditions))
    if f.channel:
        query = query.where(Item.channel_username == f.channel)
    return query


COUNT_CAP = 1_000  # the queue says "1,000+" beyond this: an exact count would touch every item


def _order(f: QueueFilter) -> tuple:
    """The column the sort walks after priority, and whether it runs descending."""
    return (Item.best_distance, False) if f.sort == "distance" else (Item.first_matched_at, f.sort == "newest")


def _sort_key(f: QueueFilter) -> tuple:
    """Reappearances (priority 1) first, then the chosen order, then id for a total order (matches an index)."""
    column, descending = _order(f)
    if descending:
        return (Item.priority.desc(), column.desc(), Item.id.desc())
    return (Item.priority.desc(), column.asc(), Item.id.asc())


def _encode(item: Item, f: QueueFilter) -> str:
    middle = str(item.best_distance) if f.sort == "distance" else item.first_matched_at.isoformat()
    return f"{item.priority}|{middle}|{item.id}"


def _decode(cursor: str, f: QueueFilter) -> tuple[int, object, int] | None:
    try:
        priority_s, middle_s, id_s = cursor.split("|")
        middle = int(middle_s) if f.sort == "distance" else dt.datetime.fromisoformat(middle_s)
        return int(priority_s), middle, int(id_s)
    except ValueError:
        return None


def queue_page(session: Session, f: QueueFilter, cursor: str | None, page_size: int) -> QueuePage:
    """One page after `cursor`: first the rest of the cursor's priority band, then the lower bands.

    Within a band the keyset condition is a row-value comparison, which both SQLite and PostgreSQL
    answer with a range scan of the sort order's index.
    """
    f = f.normalised()
    base = _filtered(f, _few_items(session, f))
    counted = session.scalar(select(func.count()).select_from(
        base.with_only_columns(Item.id).limit(COUNT_CAP + 1).subquery())) or 0
    if counted == 0:
        return QueuePage(items=[], total=0, next_cursor=None)
    column, descending = _order(f)
    wanted = page_size + 1
    position = _decode(cursor, f) if cursor else None
    items: list[Item] = []
    if position is None:
        items = list(session.scalars(base.order_by(*_sort_key(f)).limit(wanted)))
    else:
        priority, middle, item_id = position
        after = tuple_(column, Item.id) < tuple_(middle, item_id) if descending else \
            tuple_(column, Item.id) > tuple_(middle, item_id)
        items = list(session.scalars(base.where(Item.priority == priority, after)
                                     .order_by(*_sort_key(f)).limit(wanted)))
        if len(items) < wanted:
            items += session.scalars(base.where(Item.priority < priority).order_by(*_sort_key(f))
                                     .limit(wanted - len(items)))
    next_cursor = _encode(items[page_size - 1], f) if len(items) > page_size else None
    return QueuePage(items=items[:page_size], total=counted, next_cursor=next_cursor,
                     total_capped=counted > COUNT_CAP)


def facets(session: Session) -> dict[str, list[str]]:
    """Values for the filter drop-downs."""
    return {
        "list_name": list(session.scalars(select(Match.list_name).distinct().order_by(Match.list_name))),
        "category": [c for c in session.scalars(select(Match.category).distinct().order_by(Match.category)) if c],
        "signal_type": list(session.scalars(select(Match.signal_type).distinct().order_by(Match.signal_type))),
        "channel": [c for c in session.scalars(select(Item.channel_username).distinct()
                                               .order_by(Item.channel_username)) if c],
    }


def match_summary(session: Session, item_ids: list[int]) -> dict[int, dict[str, str | int]]:
    """Per item: number of matches and the lists, categories and signals involved (for the queue rows)."""
    if not item_ids:
        return {}
    rows = session.execute(select(Match.item_id, Match.list_name, Match.category, Match.signal_type)
                           .where(Match.item_id.in_(item_ids))).all()
    summary: dict[int, dict[str, set[str] | int]] = {}
    for item_id, list_name, category, signal in rows:
        entry = summary.setdefault(item_id, {"n": 0, "lists": set(), "categories": set(), "signals": set()})
        entry["n"] += 1  # type: ignore[operator]
        entry["lists"].add(list_name)  # type: ignore[union-attr]
        if category:
            entry["categories"].add(category)  # type: ignore[union-attr]
        entry["signals"].add(signal)  # type: ignore[union-attr]
    return {k: {"n": v["n"], **{name: ", ".join(sorted(v[name])) for name in ("lists", "categories", "signals")}}
            for k, v in summary.items()}  # type: ignore[arg-type]


def sightings(session: Session, item: Item, limit: int = 200) -> list[tuple[Item, Match | None]]:
    """Other items with the same file (SHA-256), the same matched hash, or a match on the same list entry.

    Three indexed lookups whose ids are merged here: one OR over them would scan every item.
    """
    ids: set[int] = set()
    if item.media_sha256:
        ids.update(session.scalars(select(Item.id).where(Item.media_sha256 == item.media_sha256)))
    entries = sorted({(m.signal_type, m.entry_hash) for m in item.matches})
    if entries:
        # an OR of equalities, not a row-value IN: SQLite answers (a, b) IN (VALUES ...) of two or more
        # pairs with a scan of all matches, and the OR with one index search per pair
        ids.update(session.scalars(select(Match.item_id).where(or_(*(and_(Match.signal_type == signal,
                                                                          Match.entry_hash == entry)
                                                                     for signal, entry in entries)))))
    media_hashes = sorted({m.media_hash for m in item.matches if m.media_hash})
    if media_hashes:
        ids.update(session.scalars(select(Match.item_id).where(Match.media_hash.in_(media_hashes))))
    ids.discard(item.id)
    if not ids:
        return []
    others = session.scalars(select(Item).where(Item.id.in_(sorted(ids))).options(selectinload(Item.matches))
                             .order_by(Item.message_date, Item.id).limit(limit)).all()
    return [(o, min(o.matches, key=lambda m: m.distance or 0) if o.matches else None) for o in others]
