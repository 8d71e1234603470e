"""The arena page on phones: Chromium emulating a touch phone (``is_mobile``, ``has_touch``)
at 320x640 (portrait) and 640x320 (landscape). The lobby fits (no horizontal scroll,
every control inside the viewport), the touch stick sits beside (landscape) or below
(portrait) the field and never over the canvas, touch help replaces keyboard help, and
avatars are drawn at least MIN_AVATAR_R CSS px however small the field. A desktop page
keeps the keyboard help and no stick.

Like tests/test_browser.py: Playwright drives Debian's Chromium; skipped without it,
failing when ``CI`` is set. Screenshots go to ``$GAMESERVER_ARTIFACTS``/browser.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from .browsing import Console, shot, state, until

StartServer = Callable[..., Awaitable[Any]]
MIN_AVATAR_R = 6  # static/js/render.js

# The lobby's controls, each of which must be wholly on screen at phone width.
LOBBY_CONTROLS = ["#name", "#world", "#quick-play", "#create-room", "#create-private",
                  "#join-id", "#join-form button", "#refresh-rooms"]

# Boxes (CSS px) of elements, null when missing or not rendered; the document's widths.
LAYOUT = """(selectors) => {
  const box = (el) => {
    if (!el) return null;
    const r = el.getBoundingClientRect();
    const shown = getComputedStyle(el).display !== "none" && r.width > 0 && r.height > 0;
    return shown ? { x: r.left, y: r.top, w: r.width, h: r.height } : null;
  };
  const boxes = {};
  for (const s of selectors) boxes[s] = box(document.querySelector(s));
  const d = document.documentElement;
  return { boxes, scrollWidth: Math.max(d.scrollWidth, document.body.scrollWidth),
           clientWidth: d.clientWidth, innerWidth: window.innerWidth,
           innerHeight: window.innerHeight };
}"""


def inside(box: dict[str, float], width: float, height: float | None = None) -> bool:
    ok = box["x"] >= -0.5 and box["x"] + box["w"] <= width + 0.5
    if height is not None:
        ok = ok and box["y"] >= -0.5 and box["y"] + box["h"] <= height + 0.5
    return ok


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (a["x"] < b["x"] + b["w"] - 0.5 and b["x"] < a["x"] + a["w"] - 0.5
            and a["y"] < b["y"] + b["h"] - 0.5 and b["y"] < a["y"] + a["h"] - 0.5)


async def layout(page: Any, selectors: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(LAYOUT, selectors)
    return result


@pytest.mark.parametrize(("width", "height"), [(320, 640), (640, 320)])
async def test_the_arena_on_a_phone(start_server: StartServer, browser: Any, artifacts: Path,
                                    width: int, height: int) -> None:
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    console = Console()
    phone = await browser.new_context(viewport={"width": width, "height": height},
                                      is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        page = await phone.new_page()
        console.watch(page, f"phone {width}x{height}")
        await page.goto(base + "/")
        await until(page, "s.screen === 'lobby' && s.games.length > 0")
        await page.fill("#name", "Thumb")
        s = await state(page)
        assert s["touch"], "a touch phone is told apart from a desktop"

        # The lobby: nothing wider than the screen, every control wholly on it.
        lobby = await layout(page, [*LOBBY_CONTROLS, ".help-touch", ".help-keys"])
        assert lobby["scrollWidth"] <= lobby["innerWidth"], lobby
        for selector in LOBBY_CONTROLS:
            box = lobby["boxes"][selector]
            assert box is not None, selector
            assert inside(box, width), (selector, box)
        # A control below the fold is reached by scrolling down, and is then wholly visible.
        for selector in LOBBY_CONTROLS:
            await page.locator(selector).scroll_into_view_if_needed()
            box = (await layout(page, [selector]))["boxes"][selector]
            assert inside(box, width, height), (selector, box)
        await page.evaluate("window.scrollTo(0, 0)")
        assert lobby["boxes"][".help-touch"] is not None, "touch help is shown"
        assert lobby["boxes"][".help-keys"] is None, "keyboard help is not"
        assert "drag the stick" in (await page.text_content(".help-touch") or "").lower()
        await shot(page, artifacts, f"phone-{width}x{height}-lobby")

        # The game: the stick beside (landscape) or below (portrait) the field, never on it.
        await page.tap("#quick-play")
        await until(page, "s.screen === 'game' && s.own !== null && s.avatarRadius > 0")
        game = await layout(page, ["#view", "#stick", ".canvas-wrap"])
        assert game["scrollWidth"] <= game["innerWidth"], game
        canvas, stick = game["boxes"]["#view"], game["boxes"]["#stick"]
        assert canvas is not None and stick is not None, game
        assert not overlap(canvas, stick), (canvas, stick)
        assert inside(stick, width, height), stick
        assert inside(canvas, width, height), canvas
        if width > height:
            assert stick["x"] >= canvas["x"] + canvas["w"] - 0.5, "landscape: beside the field"
        else:
            assert stick["y"] >= canvas["y"] + canvas["h"] - 0.5, "portrait: below the field"
        s = await state(page)
        assert s["avatarRadius"] >= MIN_AVATAR_R, s["avatarRadius"]
        print(f"{width}x{height}: canvas {canvas}, stick {stick}, "
              f"avatar radius {s['avatarRadius']:.1f} px, field scale {s['camera']['scale']:.3f}")

        # The stick steers: dragging it right moves our avatar right.
        x0 = s["own"]["x"]
        cx, cy = stick["x"] + stick["w"] / 2, stick["y"] + stick["h"] / 2
        await touch_drag(page, cx, cy, cx + stick["w"] / 2 - 4, cy)
        await until(page, f"s.own.x > {x0} || s.own.x === s.config.width - s.config.player_radius",
                    timeout=5)
        await touch_release(page, cx + stick["w"] / 2 - 4, cy)
        await shot(page, artifacts, f"phone-{width}x{height}-game")
        console.check()
    finally:
        await phone.close()


async def touch_drag(page: Any, x0: float, y0: float, x1: float, y1: float) -> None:
    """A finger down at (x0, y0) that moves to (x1, y1) and stays (CDP touch events)."""
    cdp = await page.context.new_cdp_session(page)
    page.__dict__["_touch_cdp"] = cdp
    await cdp.send("Input.dispatchTouchEvent",
                   {"type": "touchStart", "touchPoints": [{"x": x0, "y": y0}]})
    for i in range(1, 6):
        await cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
            {"x": x0 + (x1 - x0) * i / 5, "y": y0 + (y1 - y0) * i / 5}]})


async def touch_release(page: Any, x: float, y: float) -> None:
    cdp = page.__dict__.pop("_touch_cdp")
    await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    await cdp.detach()


async def test_a_desktop_keeps_keyboard_help(start_server: StartServer, browser: Any) -> None:
    server = await start_server()
    base = str(server.make_url("")).rstrip("/")
    context = await browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = await context.new_page()
        await page.goto(base + "/")
        await until(page, "s.screen === 'lobby'")
        assert not (await state(page))["touch"]
        assert await page.is_visible(".help-keys")
        assert not await page.is_visible(".help-touch")
        await page.click("#quick-play")
        await until(page, "s.screen === 'game' && s.own !== null && s.avatarRadius > 0")
        assert not await page.is_visible("#stick")
        s = await state(page)
        assert s["avatarRadius"] >= 20 * s["camera"]["scale"] - 0.01
    finally:
        await context.close()
