"""Headless Chromium for tests, driven by Playwright's sync API.

Playwright cannot download its own browser builds here, so this launches Debian's `chromium` package
(`.ci/run` installs it when missing). The sync API must not be used inside a running asyncio loop.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Playwright

INSTALL_HINT = ("Chromium was not found (no `chromium` on PATH, no /usr/bin/chromium): install the Debian "
                "package `chromium` (.ci/run does this when it is missing), or set CHANWATCH_CHROMIUM.")
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
DEFAULT_TIMEOUT_MS = 10_000


class BrowserUnavailable(RuntimeError):
    """No Chromium executable on this machine."""


def find_chromium() -> str:
    """$CHANWATCH_CHROMIUM, else `chromium` on PATH, else /usr/bin/chromium."""
    for candidate in (os.environ.get("CHANWATCH_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise BrowserUnavailable(INSTALL_HINT)


def launch(playwright: Playwright, **kwargs: Any) -> Browser:
    """Launch headless Chromium with the flags above (extra launch options may be passed)."""
    return playwright.chromium.launch(executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS,
                                      **kwargs)


def record_errors(page: Page) -> list[str]:
    """Collect the page's console errors and uncaught JS exceptions into a list, also set as
    `page.console_errors`, so a test can `assert page.console_errors == []`."""
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            where = msg.location.get("url", "") if msg.location else ""
            errors.append(f"console.error: {msg.text}" + (f" ({where})" if where else ""))

    def on_pageerror(exc: Error) -> None:
        errors.append(f"pageerror: {exc.name}: {exc.message}" if exc.name else f"pageerror: {exc.message}")

    page.on("console", on_console)
    page.on("pageerror", on_pageerror)
    page.console_errors = errors  # type: ignore[attr-defined]
    return errors
