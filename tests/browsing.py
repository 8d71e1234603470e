"""What the browser tests share: Debian's Chromium driven by Playwright, the CI rule, and
waiting on and checking pages (`window.__game.state()`, console errors, screenshots)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class Console:
    """Console errors and uncaught exceptions of every page, minus the ones a test expects."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[Callable[[str], bool]] = []

    def watch(self, page: Any, label: str) -> None:
        def on_console(msg: Any) -> None:
            if msg.type == "error":
                text = f"{msg.text} @ {msg.location.get('url', '')}"
                if not any(allow(text) for allow in self.allowed):
                    self.errors.append(f"[{label}] console.error: {text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"[{label}] pageerror: {exc}"))

    def allow_http_errors(self, path: str, *statuses: int) -> None:
        """Chromium logs every non-2xx fetch; the lobby's expected refusals are not bugs."""
        def allow(text: str) -> bool:
            return (text.startswith("Failed to load resource: the server responded with a "
                                    "status of ") and path in text
                    and any(f"status of {s} " in text for s in statuses))
        self.allowed.append(allow)

    def check(self) -> None:
        assert not self.errors, "errors on the browser console:\n" + "\n".join(self.errors)


async def shot(page: Any, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path))
    print(f"screenshot: {path}")


async def state(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("window.__game.state()")
    return result


# An init script recording every WebSocket frame a page sends (msgpack bytes), so that a
# test can check what a page put on the wire: see sent_kinds().
RECORD_SENT = """(() => {
  const send = WebSocket.prototype.send;
  window.__sent = [];
  WebSocket.prototype.send = function (data) {
    window.__sent.push(new Uint8Array(data));
    return send.call(this, data);
  };
})();"""


async def sent_kinds(page: Any) -> list[int]:
    """The message kinds (C_INPUT 1, C_MESSAGE 2, C_PING 3, C_LEAVE 4) a page with
    RECORD_SENT has sent, in order."""
    kinds: list[int] = await page.evaluate(
        "() => window.__sent.map((b) => window.MessagePack.decode(b)[0])")
    return kinds


async def until(page: Any, expression: str, timeout: float = 10.0) -> None:
    """Wait for a JS expression over ``s = window.__game.state()`` to be true."""
    # A function, not an expression: Playwright evaluates expressions with eval(),
    # which the page's Content-Security-Policy (rightly) forbids.
    script = (f"() => {{ if (!window.__game) return false; "
              f"const s = window.__game.state(); return {expression}; }}")
    try:
        await page.wait_for_function(script, timeout=timeout * 1000)
    except Exception as exc:  # playwright's TimeoutError: say what the page looked like
        if "Timeout" not in type(exc).__name__:
            raise
        now = json.dumps(await state(page), indent=1)[:4000]
        raise AssertionError(f"not true after {timeout} s: {expression}\nstate: {now}") from None
