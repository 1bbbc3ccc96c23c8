"""The `report` step: bring the aggregates up to date, gather the figures, write HTML and CSVs."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from chanwatch.report.figures import gather
from chanwatch.report.render import write
from chanwatch.settings import Settings
from chanwatch.steps.review_db import open_review_db

log = logging.getLogger("chanwatch.report")
DEFAULT_OUT = Path("var/report")


@dataclass
class ReportResult:
    html: Path
    csvs: list[Path]
    summary: dict
    seconds: float


def write_report(settings: Settings, out_dir: Path = DEFAULT_OUT, since: dt.date | None = None) -> ReportResult:
    """Aggregates first (incremental, so cheap when nothing changed), then the report from them."""
    from chanwatch.steps.aggregate import run_aggregate

    started = time.perf_counter()
    run_aggregate(settings)
    engine = open_review_db(settings)
    try:
        figures = gather(settings.storage_root, engine, since)
    finally:
        engine.dispose()
    html, csvs = write(figures, out_dir)
    seconds = time.perf_counter() - started
    log.info("event=report.done html=%s csvs=%d matches=%s flagged=%d seconds=%.1f", html, len(csvs),
             figures.summary.get("matches"), len(figures.flagged_items), seconds)
    return ReportResult(html, csvs, figures.summary, seconds)
