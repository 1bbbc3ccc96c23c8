"""The import a user would write without chanwatch: the yardstick in bench/bench_import.py.

Deliberately naive, as a one-off script would be: load the whole export, one DataFrame, stringify the
nested columns Parquet cannot take as they are, write one file.

    python bench/baseline_import.py IN.json OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd


def _to_json(value: Any) -> Any:
    """Lists and dicts become JSON text; strings and missing values stay as they are."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


def flatten(df: pd.DataFrame) -> pd.DataFrame:
    """Stringify every object column holding lists or dicts (text, text_entities, reactions)."""
    for column in df.columns:
        if df[column].dtype == object and df[column].map(lambda v: isinstance(v, list | dict)).any():
            df[column] = df[column].map(_to_json)
    return df


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    src, out_dir = Path(argv[0]), Path(argv[1])
    with src.open(encoding="utf-8") as f:
        doc = json.load(f)
    df = flatten(pd.DataFrame(doc["messages"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out_dir / "messages.parquet")
    print(f"wrote {len(df)} rows to {out_dir / 'messages.parquet'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
