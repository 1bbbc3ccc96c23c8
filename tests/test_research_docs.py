"""Every example in docs/research.md runs, as written, against the storage root the demo pipeline writes.

The fixture runs `chanwatch demo` in a fresh directory (so `var/data` is the real default root) and the
aggregate step; each ```python and ```sql block then runs from that directory and must return rows
(SQL: the last statement's rows, not all zero or null; Python: the last expression's value, or `result`).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from tests.conftest import CLI, REPO

DOC = REPO / "docs" / "research.md"
FENCE = re.compile(r"^```(python|sql)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def doc_blocks() -> list[tuple[str, int, str]]:
    """(language, line of the opening fence, code) for every runnable block of the doc."""
    text = DOC.read_text(encoding="utf-8")
    return [(m.group(1), text.count("\n", 0, m.start()) + 1, m.group(2)) for m in FENCE.finditer(text)]


def aggregate_step() -> Any:
    try:
        from chanwatch.steps.aggregate import run_aggregate
    except ImportError:
        return None
    return run_aggregate


def needs_aggregates(code: str) -> bool:
    return "aggregates/" in code


def block_params() -> list[Any]:
    params = []
    for lang, line, code in doc_blocks():
        marks = []
        if needs_aggregates(code) and aggregate_step() is None:
            # Temporary, until the aggregate step lands: these blocks must fail now (no aggregates yet) and
            # run normally, unmarked, once `chanwatch.steps.aggregate.run_aggregate` is importable.
            marks.append(pytest.mark.xfail(strict=True, reason="chanwatch.steps.aggregate.run_aggregate "
                                           "is not importable yet, so the aggregates are not built"))
        params.append(pytest.param(lang, line, code, id=f"{lang}-line{line}", marks=marks))
    return params


@pytest.fixture(scope="module")
def demo_cwd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose `var/data` holds what `chanwatch demo` (and `chanwatch aggregate`) write."""
    cwd = tmp_path_factory.mktemp("research")
    (cwd / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHANWATCH_")}
    env.update(TMPDIR=str(cwd / "tmp"), COLUMNS="200")
    result = subprocess.run([*CLI, "demo"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    run_aggregate = aggregate_step()
    if run_aggregate is not None:
        from chanwatch.settings import load_settings

        run_aggregate(load_settings(storage=str(cwd / "var" / "data"), environ={}))
    return cwd


def run_python(code: str, line: int) -> Any:
    """Run a block; return its last expression's value, else its `result` variable."""
    tree = ast.parse(code, filename=f"{DOC}:{line}")
    namespace: dict[str, Any] = {"__name__": "research_doc_example"}
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    body = tree.body[:-1] if last is not None else tree.body
    exec(compile(ast.Module(body=body, type_ignores=[]), f"{DOC}:{line}", "exec"), namespace)
    if last is not None:
        return eval(compile(ast.Expression(last.value), f"{DOC}:{line}", "eval"), namespace)
    assert "result" in namespace, "a Python example ends with an expression or sets `result`"
    return namespace["result"]


def row_count(value: Any) -> int:
    if isinstance(value, pd.DataFrame | pd.Series | pl.DataFrame):
        return len(value)
    if isinstance(value, pa.Table):
        return value.num_rows
    if isinstance(value, duckdb.DuckDBPyRelation):
        return len(value.fetchall())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise AssertionError(f"the example returns a {type(value).__name__}: end it with a table, a frame or a count")


def test_the_doc_has_examples_in_every_tool() -> None:
    blocks = doc_blocks()
    code = "\n".join(c for _, _, c in blocks)
    assert sum(lang == "sql" for lang, _, _ in blocks) >= 8 and sum(lang == "python" for lang, _, _ in blocks) >= 8
    for needle in ("import duckdb", "import pandas", "import polars", "import pyarrow", "aggregates/channel_daily",
                   "aggregates/forward_edges", "aggregates/matches_daily", "var/data/matches"):
        assert needle in code, needle
    assert "(datasets.md)" in DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize(("lang", "line", "code"), block_params())
def test_doc_example_runs_and_returns_rows(demo_cwd: Path, monkeypatch: pytest.MonkeyPatch, lang: str, line: int,
                                           code: str) -> None:
    monkeypatch.chdir(demo_cwd)
    if lang == "sql":
        con = duckdb.connect()
        try:
            relation = con.sql(code)
            assert relation is not None, f"{DOC}:{line}: the block's last statement returns no rows"
            rows = relation.fetchall()
        finally:
            con.close()
        assert rows, f"{DOC}:{line}: no rows"
        # an aggregate over nothing still returns a row (count 0, or nulls): that is no result either
        assert any(v is not None and v != 0 for row in rows for v in row), f"{DOC}:{line}: only zeros and nulls"
    else:
        assert row_count(run_python(code, line)) > 0, f"{DOC}:{line}: empty result"
