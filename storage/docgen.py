"""Generate `docs/datasets.md` from the schema code: `python -m storage.docgen > docs/datasets.md`.

A test regenerates it and fails when the committed file differs, so the docs cannot go stale.
"""

from __future__ import annotations

import pyarrow as pa

from storage.schemas import ALL_DATASETS, DatasetSpec

HEADER = """# Datasets

Generated from `storage/schemas.py` by `make docs` (`python -m storage.docgen`); do not edit by hand.

Every dataset is Hive-partitioned Parquet under the storage root (default `var/data`). Read them with
no options beyond Hive partitioning:

```python
import duckdb, pandas as pd, pyarrow.dataset as ds
duckdb.sql("SELECT count(*) FROM read_parquet('var/data/messages/**/*.parquet', hive_partitioning=true)")
pd.read_parquet("var/data/messages")                       # `month` arrives as a categorical
ds.dataset("var/data/messages", partitioning="hive").to_table()
```

File names are deterministic (channel, month, block of message ids), so a re-run rewrites a file
instead of adding one. Writes are staged under `_staging/` and renamed into place, so a reader never
sees a half-written file. Rows are unique by the primary key; a re-run that brings nothing new keeps
the stored row as it was, including `collected_at` and `run_id`. Run state (checkpoints, run
reports with skipped records and their reasons) lives under `_state/` and is not a dataset.
"""


def type_name(type_: pa.DataType) -> str:
    return str(type_).replace("timestamp[us, tz=UTC]", "timestamp (UTC, µs)")


def dataset_section(spec: DatasetSpec) -> str:
    lines = [f"## `{spec.name}` (schema version {spec.version})", "", spec.about, "",
             f"- Layout: {spec.layout}",
             f"- Primary key: {', '.join(f'`{k}`' for k in spec.primary_key)}",
             f"- Columns that record when or by which run a row was written: "
             f"{', '.join(f'`{k}`' for k in spec.volatile)}", "",
             "| column | type | nullable | meaning |", "|---|---|---|---|"]
    for field in spec.schema:
        doc = (field.metadata or {}).get(b"doc", b"").decode()
        lines.append(f"| `{field.name}` | `{type_name(field.type)}` | {'yes' if field.nullable else 'no'} | {doc} |")
    lines.append("| `month` | `string` (Hive partition) | no | Partition value `YYYY-MM`, from the path. |")
    return "\n".join(lines)


def render() -> str:
    return HEADER + "\n" + "\n\n".join(dataset_section(spec) for spec in ALL_DATASETS) + "\n"


if __name__ == "__main__":
    print(render(), end="")
