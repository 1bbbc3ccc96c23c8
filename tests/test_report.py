"""`chanwatch report` on the demo: one self-contained HTML file that renders offline, and its CSVs."""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from tests.conftest import CLI
from tests.review_data import SyntheticMatch, _hex, write_datasets

DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
HOSTILE_CATEGORY = "<script>window.pwned=1</script>"


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo, one referral removed after 5 hours, a hostile category, then `chanwatch report`."""
    from review import accounts, workflow
    from review.config import ReviewSettings
    from storage.reviewdb.engine import default_url, open_engine, session_factory
    from storage.reviewdb.models import Item

    root = tmp_path_factory.mktemp("report")
    (root / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(root / "tmp"), "COLUMNS": "200"}
    env.pop("CHANWATCH_CONFIG", None)
    demo = subprocess.run([*CLI, "demo"], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr
    write_datasets(root / "var/data", [SyntheticMatch(555, 5, 0, "other-list", "md5", _hex("x", 32), 0,
                                                      HOSTILE_CATEGORY)], file_tag="hostile")
    engine = open_engine(default_url(root / "var/data"))
    with session_factory(engine)() as s:
        ana, lea = (accounts.add_user(s, n, r, "report test password", ReviewSettings())
                    for n, r in (("ana", "analyst"), ("lea", "lead")))
        items = s.scalars(select(Item).order_by(Item.best_distance, Item.id)).all()[:2]
        sent = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
        for item in items:
            workflow.claim(s, item.id, ana, ReviewSettings())
            workflow.decide(s, item, ana, "confirm", "listed image")
            workflow.approve(s, item, lea)
        referral = workflow.create_referral(s, lea, [i.id for i in items], "Telegram", now=sent)
        workflow.mark_sent(s, referral, lea, now=sent)
        workflow.record_check(s, referral.items[0], "deleted", sent + dt.timedelta(hours=5))
        s.commit()
    engine.dispose()
    done = subprocess.run([*CLI, "report", "--out", "out"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"report: {root / 'out' / 'report.html'}" in done.stdout.replace("\n", "")
    return root / "out"


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def test_report_csvs_carry_the_figures(reported: Path) -> None:
    summary = {r["figure"]: r["value"] for r in read_csv(reported / "summary.csv")}
    assert summary["matches"] == "12" and summary["matched_media"] == "11"
    assert (summary["referred"], summary["removed"], summary["median_hours_to_removal"]) == ("2", "1", "5.0")
    assert summary["removal_rate"] == "0.5" and summary["confirmed"] == "2"
    flagged = read_csv(reported / "flagged_items.csv")
    assert len(flagged) == 10 and all(r["url"].startswith("https://t.me/chanwatch_demo/") for r in flagged)
    by_day = read_csv(reported / "matches_by_day.csv")
    assert sum(int(r["matches"]) for r in by_day) == 12
    categories = {r["category"]: int(r["matches"]) for r in read_csv(reported / "top_categories.csv")}
    assert categories == {"demo-known-material": 11, HOSTILE_CATEGORY: 1}
    channels = {r["channel"]: int(r["matches"]) for r in read_csv(reported / "top_channels.csv")}
    assert channels == {"chanwatch_demo": 11, "fake_channel_555": 1}
    referrals = read_csv(reported / "referrals.csv")
    assert [r["removal_status"] for r in referrals] == ["deleted", ""]


def test_report_is_one_offline_file_that_renders_without_errors(reported: Path, page: Page) -> None:
    html = (reported / "report.html").read_text()
    assert "<script" not in html.replace("&lt;script", ""), "no script at all, and hostile text escaped"
    assert "src=\"http" not in html and "href=\"http" not in html.replace('href="https://t.me/', "")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.set_viewport_size({"width": 1200, "height": 900})
    page.goto((reported / "report.html").as_uri())
    for section in ("summary", "matches-over-time", "top", "spread", "review", "referrals", "flagged"):
        assert page.locator(f"#{section}").is_visible(), section
    assert page.locator(".chart svg").count() == 6
    assert page.locator("#flagged-items tbody tr").count() == 10
    assert page.evaluate("window.pwned") is None
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert page.console_errors == []
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "report.png"), full_page=True)
