"""The report's charts: matplotlib figures rendered to inline SVG (no files, no external requests)."""

from __future__ import annotations

import io
import math
import statistics
from collections import defaultdict
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

plt.rcParams.update({"svg.fonttype": "none", "font.size": 10, "axes.spines.top": False,
                     "axes.spines.right": False, "figure.dpi": 100, "svg.hashsalt": "chanwatch"})
PALETTE = ["#1f3a5f", "#c2570c", "#3f8f5b", "#8a4fa3", "#b8a233", "#4f9fc2"]


def _svg(fig: plt.Figure) -> str:
    """The figure as an SVG element (deterministic ids, no XML prolog), then closed."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _empty(message: str) -> str:
    fig, ax = plt.subplots(figsize=(7, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#666")
    return _svg(fig)


def matches_over_time(rows: list[dict[str, Any]]) -> str:
    """Stacked daily bars of matches per signal type."""
    if not rows:
        return _empty("No matches in this period.")
    days = sorted({r["day"] for r in rows})
    by_signal: dict[str, dict[Any, int]] = defaultdict(dict)
    for r in rows:
        by_signal[r["signal_type"]][r["day"]] = r["matches"]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    bottom = [0] * len(days)
    for n, (signal, values) in enumerate(sorted(by_signal.items())):
        heights = [values.get(d, 0) for d in days]
        ax.bar(days, heights, bottom=bottom, label=signal, color=PALETTE[n % len(PALETTE)], width=0.9)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_ylabel("matches per day")
    ax.legend(frameon=False, ncols=min(6, len(by_signal)))
    fig.autofmt_xdate()
    return _svg(fig)


def horizontal_bars(labels: list[str], values: list[int], xlabel: str, color: str = PALETTE[0]) -> str:
    if not labels:
        return _empty("Nothing to show in this period.")
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(labels) + 0.8))
    ax.barh(labels[::-1], values[::-1], color=color)
    ax.set_xlabel(xlabel)
    for y, v in enumerate(values[::-1]):
        ax.text(v, y, f" {v:,}", va="center", fontsize=9)
    return _svg(fig)


def spread_graph(edges: list[dict[str, Any]]) -> str:
    """Forward edges as a directed graph on a circle: arrow width by forwards, orange when media matched."""
    if not edges:
        return _empty("No forwards between channels in this period.")
    nodes = sorted({e["source"] for e in edges} | {e["target"] for e in edges})
    angle = {n: 2 * math.pi * i / len(nodes) for i, n in enumerate(nodes)}
    pos = {n: (math.cos(a), math.sin(a)) for n, a in angle.items()}
    fig, ax = plt.subplots(figsize=(8, 8))
    ax.set_aspect("equal")
    ax.axis("off")
    top = max(e["forwards"] for e in edges)
    for e in edges:
        (x1, y1), (x2, y2) = pos[e["source"]], pos[e["target"]]
        matched = (e.get("forwards_matched") or 0) > 0
        ax.annotate("", xy=(x2 * 0.93, y2 * 0.93), xytext=(x1 * 0.93, y1 * 0.93),
                    arrowprops={"arrowstyle": "-|>", "lw": 0.8 + 5 * e["forwards"] / top,
                                "color": PALETTE[1] if matched else PALETTE[0], "alpha": 0.75,
                                "connectionstyle": "arc3,rad=0.12", "mutation_scale": 14})
    targets = {e["target"] for e in edges}
    for n, (x, y) in pos.items():
        ax.scatter([x], [y], s=140, color=PALETTE[2] if n in targets else "#999", zorder=3)
        ax.text(x * 1.12, y * 1.12, n, ha="center", va="center", fontsize=9)
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.4, 1.4)
    ax.set_title("source -> forwarding channel (green: monitored; orange arrows carried matched media)",
                 fontsize=9)
    return _svg(fig)


def removal_histogram(hours: list[float]) -> str:
    if not hours:
        return _empty("No referred item has been removed yet.")
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(hours, bins=min(20, max(5, len(hours))), color=PALETTE[2])
    median = statistics.median(hours)
    ax.axvline(median, color=PALETTE[1], linestyle="--", label=f"median {median:.1f} h")
    ax.set_xlabel("hours from referral sent to removal")
    ax.set_ylabel("items")
    ax.legend(frameon=False)
    return _svg(fig)
