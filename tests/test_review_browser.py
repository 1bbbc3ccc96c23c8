"""The analysts' flows in a real headless Chromium against the real app on 127.0.0.1.

Log in, work the queue, open the evidence, confirm, get a lead's approval, export a referral,
mark it sent, and see the recheck (through the fake Telegram) mark it removed. Screenshots of the
main pages go to docs/ so a reader sees the app.
"""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from chanwatch.settings import load_settings
from chanwatch.steps.recheck import run_recheck
from review.web import create_app
from tests.exports import write_config
from tests.review_app import PASSWORD, seeded_engine, served
from tests.review_data import HOSTILE_TEXT, SyntheticMatch, _hex
from tests.telegram_fake import DEMO_CHANNEL_ID, FakeTelegramClient, demo_world

DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
PHOTO, VIDEO = 6, 10  # messages of @fake_news_demo in the fake Telegram


@pytest.fixture
def site(tmp_path: Path):
    entry = _hex("known-browser")
    matches = [
        SyntheticMatch(DEMO_CHANNEL_ID, PHOTO, 0, "demo-known", "pdq", entry, 3, "deepfake", text=HOSTILE_TEXT),
        SyntheticMatch(DEMO_CHANNEL_ID, VIDEO, 0, "demo-known", "md5", _hex("v", 32), 0, "ncii"),
        SyntheticMatch(1000, 77, 0, "demo-known", "pdq", entry, 11, "deepfake", fwd_from=(DEMO_CHANNEL_ID, PHOTO)),
    ]
    storage = tmp_path / "data"
    engine = seeded_engine(storage, matches)
    config = write_config(tmp_path / "chanwatch.toml", storage,
                          channels=[{"username": "fake_news_demo", "channel_id": DEMO_CHANNEL_ID}])
    with served(create_app(engine)) as base:
        yield base, load_settings(config)
    engine.dispose()


def log_in(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Review queue")


def log_out(page: Page) -> None:
    page.click("form.logout button")
    expect(page.locator("h1")).to_have_text("Log in")


def shot(page: Page, name: str) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / f"review-{name}.png"), full_page=True)


def test_review_confirm_approve_refer_and_recheck_removed(page: Page, site) -> None:
    base, settings = site
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, base, "ana")
    expect(page.locator("#queue-total")).to_have_text("3 items")
    shot(page, "queue")
    page.select_option("select[name=signal]", "md5")
    page.click("form.filters button")
    expect(page.locator("#queue-total")).to_have_text("1 item")
    page.select_option("select[name=signal]", "")
    page.select_option("select[name=sort]", "distance")
    page.click("form.filters button")

    page.click("#review-next")  # claims the closest match first: the md5 (distance 0) post
    expect(page.locator("#item-status")).to_have_text("new")
    page.goto(f"{base}/queue")
    photo_row = page.locator("table.queue tbody tr", has_text="@fake_news_demo").filter(has_text="deepfake")
    photo_row.locator("a").first.click()  # the photo post, whose text is hostile
    expect(page.locator("#message-text")).to_have_text(HOSTILE_TEXT)  # shown as text, never run
    assert page.evaluate("document.body.dataset.pwned") is None
    page.click("#claim")
    expect(page.locator("#sightings tbody tr")).to_have_count(1)  # the forward in another channel
    shot(page, "evidence")
    page.click("#show-preview")
    expect(page.locator("#preview-frame")).to_have_class("frame blurred")
    page.fill("#reason", "same image as the listed entry, benign stand-in")
    page.click("#confirm")
    expect(page.locator("#item-status")).to_have_text("confirmed")
    log_out(page)

    log_in(page, base, "lea")
    page.click("text=Approvals")
    page.click("#approvals button")
    page.click("text=Referrals")
    shot(page, "referrals-ready")
    page.fill("input[name=recipient]", "Telegram abuse team")
    page.click("#create-referral")
    expect(page.locator("h1")).to_contain_text("Referral CW-")
    with page.expect_download() as download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [(r["message_url"], r["hash_type"], r["channel"]) for r in rows] == [
        (f"https://t.me/fake_news_demo/{PHOTO}", "pdq", "fake_news_demo")]
    page.click("#mark-sent")
    expect(page.locator("#sent-at")).to_contain_text("sent")

    world = demo_world()
    world.delete(DEMO_CHANNEL_ID, PHOTO)
    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API owns this thread's event loop
        result = pool.submit(run_recheck, settings,
                             client_factory=lambda _c, _t: FakeTelegramClient(world)).result()
    assert result.counts["removed_new"] == 1
    page.reload()
    expect(page.locator("#referral-items td.removed")).to_contain_text("removed")
    shot(page, "referral")
    page.click("text=Referrals")
    expect(page.locator("#removal-stats")).to_contain_text("1 removed")
    page.click("text=Audit log")
    expect(page.locator("#audit")).to_contain_text("removed")
    assert page.console_errors == []
