"""Structured logs: one `key=value` line per event on stderr, with counts per step.

Log lines never include secrets: callers log counts, ids and paths, never credentials.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def setup_logging(verbose: bool = False) -> None:
    root = logging.getLogger("chanwatch")
    if any(getattr(h, "_chanwatch", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%Y-%m-%dT%H:%M:%S%z"))
    handler._chanwatch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
