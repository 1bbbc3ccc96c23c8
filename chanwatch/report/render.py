"""Write the report: one self-contained HTML file (inline CSS and SVG charts) and a CSV per table."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from chanwatch.report import charts
from chanwatch.report.figures import ReportFigures
from review.exports import spreadsheet_safe
from storage.files import write_bytes_atomic

TEMPLATES = Path(__file__).with_name("templates")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    env.filters["thousands"] = lambda v: f"{v:,}" if isinstance(v, int) else ("" if v is None else v)
    env.filters["when"] = lambda v: v.strftime("%Y-%m-%d %H:%M") if isinstance(v, dt.datetime) else (v or "")
    return env


def _csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    write_bytes_atomic(path, buf.getvalue().encode())
    return path


def _cell(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else spreadsheet_safe(value)


def write(figures: ReportFigures, out_dir: Path) -> tuple[Path, list[Path]]:
    """Render report.html and the CSVs into `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    charts_svg = {
        "matches_over_time": charts.matches_over_time(figures.matches_by_day),
        "top_channels": charts.horizontal_bars([r["channel"] for r in figures.top_channels],
                                               [r["matches"] for r in figures.top_channels], "matches"),
        "top_categories": charts.horizontal_bars([r["category"] or "(none)" for r in figures.top_categories],
                                                 [r["matches"] for r in figures.top_categories], "matches",
                                                 charts.PALETTE[1]),
        "spread": charts.spread_graph(figures.forward_edges),
        "review": charts.horizontal_bars([r["status"] for r in figures.review_outcomes],
                                         [r["items"] for r in figures.review_outcomes], "items",
                                         charts.PALETTE[3]),
        "removal": charts.removal_histogram(figures.hours_to_removal),
    }
    html = _environment().get_template("report.html.j2").render(f=figures, charts=charts_svg,
                                                                  generated=dt.datetime.now(dt.UTC))
    html_path = out_dir / "report.html"
    write_bytes_atomic(html_path, html.encode())
    csvs = [
        _csv(out_dir / "summary.csv", [{"figure": k, "value": v} for k, v in figures.summary.items()],
             ["figure", "value"]),
        _csv(out_dir / "matches_by_day.csv", figures.matches_by_day, ["day", "signal_type", "matches"]),
        _csv(out_dir / "top_channels.csv", figures.top_channels,
             ["channel", "channel_id", "matches", "media", "first_post", "last_post"]),
        _csv(out_dir / "top_categories.csv", figures.top_categories, ["category", "matches", "media"]),
        _csv(out_dir / "forward_edges.csv", figures.forward_edges,
             ["source", "target", "forwards", "forwards_with_media", "forwards_matched", "first_date", "last_date"]),
        _csv(out_dir / "review_outcomes.csv", figures.review_outcomes, ["status", "items"]),
        _csv(out_dir / "referrals.csv", figures.referrals,
             ["reference", "reference_id", "recipient", "sent_at", "removed_at", "removal_status", "channel_username",
              "message_url"]),
        _csv(out_dir / "flagged_items.csv", figures.flagged_items,
             ["item", "status", "reappearance", "channel", "posted", "list", "category", "signal", "distance", "url"]),
    ]
    return html_path, csvs
