"""The hash-list inbox that the chanwatch_hashlists DAG imports: new versions once, bad files refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chanwatch.settings import HashlistSettings, load_settings
from chanwatch.steps.hashlist_inbox import import_inbox
from chanwatch.steps.hashlists import list_versions
from processing.errors import BadInputError

A, B = "a" * 64, "5" * 64


def test_inbox_imports_new_folders_once_and_refuses_a_bad_file(tmp_path: Path) -> None:
    settings = dataclasses.replace(load_settings(storage=str(tmp_path / "data"), environ={}),
                                   hashlists=HashlistSettings(inbox=str(tmp_path / "inbox"), default_category="cat"))
    hotline = tmp_path / "inbox" / "hotline"
    hotline.mkdir(parents=True)
    (hotline / "list.txt").write_text(f"{A}\n")
    (hotline / ".signal").write_text("pdq\n")
    (hotline / ".category").write_text("ncii\n")
    assert import_inbox(settings) == {"lists_seen": 1, "imported": 1, "unchanged": 0}
    assert import_inbox(settings) == {"lists_seen": 1, "imported": 0, "unchanged": 1}
    (hotline / "list.txt").write_text(f"{A}\n{B}\nnot-a-hash\n")
    with pytest.raises(BadInputError, match=r"list.txt:3: "):
        import_inbox(settings)
    versions = list_versions(settings)
    summary = [(v["list_version"], v["state"], v["category"], v["entries"]) for v in versions]
    assert summary == [(1, "active", "ncii", 1)]  # the bad file changed nothing
