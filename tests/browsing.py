"""What the browser tests share: Debian's Chromium driven by Playwright, and the CI rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("GAMESERVER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # This machine's network is closed: no background calls home, no component updates.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Several pages play at once; none of them may be throttled as a background tab.
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


def missing(what: str) -> None:
    """A prerequisite is missing: a failure in CI, a skip on a developer's machine."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (required when CI is set)")
    pytest.skip(what)


def check_chromium() -> None:
    if not Path(CHROMIUM).is_file():
        missing(f"chromium is not installed at {CHROMIUM} (apt-get install chromium)")
