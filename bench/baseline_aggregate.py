"""The daily-activity table a researcher would compute without chanwatch: the yardstick in bench/bench_aggregate.py.

Deliberately naive, as a one-off script would be: pandas reads the needed columns of every file, the
reactions are summed row by row, three group-bys are joined, and everything is recomputed every time.
Same definitions as `aggregates/channel_daily` (service messages out, deleted ones in), so the bench can
check the two agree row for row.

    python bench/baseline_aggregate.py ROOT OUT.parquet
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def channel_daily(root: Path) -> pd.DataFrame:
    msg = pd.read_parquet(root / "messages", columns=[
        "channel_id", "date", "message_type", "deleted", "fwd_from_channel_id", "fwd_from_name", "views",
        "forwards", "replies", "reactions"])
    msg = msg[msg["date"].notna() & (msg["message_type"].fillna("message") != "service")]
    msg["day"] = msg["date"].dt.tz_convert("UTC").dt.date
    msg["is_forward"] = msg["fwd_from_channel_id"].notna() | msg["fwd_from_name"].notna()
    msg["reaction_sum"] = msg["reactions"].map(lambda rs: 0 if rs is None else sum(r["count"] for r in rs))
    keys = ["channel_id", "day"]
    m = msg.groupby(keys).agg(messages=("date", "size"), messages_deleted=("deleted", "sum"),
                              forwarded_messages=("is_forward", "sum"), views=("views", "sum"),
                              forwards=("forwards", "sum"), replies=("replies", "sum"),
                              reactions=("reaction_sum", "sum"))
    del msg
    media = pd.read_parquet(root / "media", columns=["channel_id", "date", "status"])
    media["day"] = media["date"].dt.tz_convert("UTC").dt.date
    media["hashed"] = media["status"] == "hashed"
    d = media.groupby(keys).agg(media=("status", "size"), media_hashed=("hashed", "sum"))
    matches = pd.read_parquet(root / "matches", columns=["channel_id", "message_id", "media_index", "date"])
    matches["day"] = matches["date"].dt.tz_convert("UTC").dt.date
    matches["media_key"] = list(zip(matches["message_id"], matches["media_index"], strict=True))
    x = matches.groupby(keys).agg(matches=("date", "size"), matched_media=("media_key", "nunique"))
    out = m.join(d, how="outer").join(x, how="outer").fillna(0).reset_index()
    return out.astype({c: "int64" for c in out.columns if c not in ("channel_id", "day")})


def main() -> None:
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    table = channel_daily(root)
    table.to_parquet(out, index=False)
    print(f"{len(table)} channel-days")


if __name__ == "__main__":
    main()
