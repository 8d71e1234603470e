"""The admin API and the /monitor page: closed without a token, guarded by it, working with it.

The page is driven in Debian's Chromium with Playwright (skipped without them,
failed when ``CI`` is set). Screenshots go to ``$GAMESERVER_ARTIFACTS`` if set,
else to pytest's temporary folder; their paths are printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gameserver.core import codec

from .client import Player, url

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def closed_with(player: Player, timeout: float = 5.0) -> tuple[int, str]:
    """Read until the server's close frame; its code and reason (as sent, not as the
    client library later reports them)."""
    while True:
        msg = await player.ws.receive(timeout=timeout)
        if msg.type is aiohttp.WSMsgType.BINARY:
            continue
        assert msg.type is aiohttp.WSMsgType.CLOSE, msg
        return msg.data, msg.extra or ""


@pytest.fixture
async def admin_base(start_server: Callable[..., Any]) -> str:
    return url(await start_server(admin_token=TOKEN))


async def call(session: aiohttp.ClientSession, method: str, address: str,
               headers: dict[str, str] | None = None, **kwargs: Any
               ) -> tuple[int, dict[str, Any]]:
    async with session.request(method, address, headers=headers, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_everything_is_404_without_a_configured_token(
        session: aiohttp.ClientSession, base: str) -> None:
    await Player.join(session, base, name="ann")
    for method, path in (("GET", "/monitor"), ("GET", "/admin/rooms"),
                         ("GET", "/admin/rooms/x"), ("POST", "/admin/rooms/x/kick"),
                         ("POST", "/admin/rooms/x/dispose"), ("POST", "/admin/drain")):
        async with session.request(method, f"{base}{path}", headers=AUTH) as resp:
            assert resp.status == 404, path


async def test_admin_calls_need_the_token(session: aiohttp.ClientSession, admin_base: str
                                          ) -> None:
    ann = await Player.join(session, admin_base, name="ann")
    for headers in (None, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN},
                    {"Authorization": f"Bearer {TOKEN}x"}):
        for method, path in (("GET", "/admin/rooms"), ("GET", f"/admin/rooms/{ann.room_id}"),
                             ("POST", f"/admin/rooms/{ann.room_id}/kick"),
                             ("POST", f"/admin/rooms/{ann.room_id}/dispose"),
                             ("POST", "/admin/drain")):
            async with session.request(method, f"{admin_base}{path}", headers=headers,
                                       json={"player_id": ann.player_id}) as resp:
                assert resp.status == 401, (headers, path)
                assert resp.headers["WWW-Authenticate"].startswith("Bearer")
                assert (await resp.json())["error"] == "unauthorized"
    await ann.pump()  # still in the room: nothing happened
    status, room = await call(session, "GET", f"{admin_base}/admin/rooms/{ann.room_id}", AUTH)
    assert status == 200 and [p["name"] for p in room["players"]] == ["ann"]
    async with session.get(f"{admin_base}/monitor") as resp:  # the page itself is public
        assert resp.status == 200
        assert "text/html" in resp.headers["Content-Type"]
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        assert TOKEN not in await resp.text()


async def test_a_drain_sends_new_players_elsewhere_and_lets_games_finish(
        session: aiohttp.ClientSession, admin_base: str) -> None:
    ann = await Player.join(session, admin_base, name="ann")
    await ann.pump()
    status, body = await call(session, "POST", f"{admin_base}/admin/drain", AUTH)
    assert status == 200 and body == {"draining": True, "rooms": 1, "players": 1}
    async with session.get(f"{admin_base}/readyz") as resp:
        assert resp.status == 503
    status, refused = await call(session, "POST", f"{admin_base}/matchmake",
                                 json={"game": "arena", "name": "late"})
    assert (status, refused["error"]) == (503, "server_draining")
    # The game in progress plays on.
    assert 17 <= await ann.rate() <= 23
    seq = await ann.send_input(100, 0)
    await ann.until(lambda: ann.replica.ack == seq)


async def test_rooms_listing_shows_every_room_with_its_figures(
        session: aiohttp.ClientSession, admin_base: str) -> None:
    ann = await Player.join(session, admin_base, name="ann")
    bob = await Player.join(session, admin_base, name="bob", mode="create", private=True)
    await ann.updates_for(1.3)
    status, data = await call(session, "GET", f"{admin_base}/admin/rooms", AUTH)
    assert status == 200
    rooms = {r["room_id"]: r for r in data["rooms"]}
    assert set(rooms) == {ann.room_id, bob.room_id}  # the private one too
    assert data["players"] == 2 and data["accepting"] is True
    public, private = rooms[ann.room_id], rooms[bob.room_id]
    assert private["private"] is True and public["private"] is False
    assert public["game"] == "arena" and public["players"] == 1
    assert public["max_players"] == 16 and public["locked"] is False
    assert public["tick_rate"] == 20
    assert 15 <= public["achieved_rate"] <= 25
    assert 0 < public["tick_p50_ms"] <= public["tick_p99_ms"]
    assert public["bytes_per_s"] > 0 and public["bytes_sent"] > 0
    assert public["state_bytes"] > 10 and public["entities"] > 1
    assert public["created_at"] > 1.6e9


async def test_a_room_shows_its_players_and_state(session: aiohttp.ClientSession,
                                                  admin_base: str) -> None:
    ann = await Player.join(session, admin_base, name="ann")
    bob = await Player.join(session, admin_base, name="bob")
    await ann.until(lambda: ann.avatar is not None)
    status, room = await call(session, "GET", f"{admin_base}/admin/rooms/{ann.room_id}", AUTH)
    assert status == 200
    assert [(p["id"], p["name"], p["connected"]) for p in room["players"]] == \
        [(ann.player_id, "ann", True), (bob.player_id, "bob", True)]
    avatars = {e["name"]: e for e in room["state"]["entities"].values() if e["type"] == "Avatar"}
    assert set(avatars) == {"ann", "bob"}
    assert avatars["ann"]["pid"] == ann.player_id
    assert {"x", "y", "score"} <= set(avatars["ann"])
    assert room["state"]["entity_count"] == len(room["state"]["entities"])
    status, missing = await call(session, "GET", f"{admin_base}/admin/rooms/nope", AUTH)
    assert (status, missing["error"]) == (404, "no_such_room")


async def test_kick_closes_the_players_socket_with_4003(session: aiohttp.ClientSession,
                                                        admin_base: str) -> None:
    ann = await Player.join(session, admin_base, name="ann")
    bob = await Player.join(session, admin_base, name="bob")
    kick = f"{admin_base}/admin/rooms/{ann.room_id}/kick"
    for body, expected in (({"player_id": "1"}, 400), ({}, 400),
                           ({"player_id": 99}, 404), ("[1]", 400)):
        kwargs = {"data": body} if isinstance(body, str) else {"json": body}
        assert (await call(session, "POST", kick, AUTH, **kwargs))[0] == expected, body
    status, data = await call(session, "POST", kick, AUTH,
                              json={"player_id": bob.player_id, "reason": "cheating"})
    assert status == 200 and data["kicked"] == bob.player_id
    code, reason = await closed_with(bob)
    assert (code, reason) == (codec.CLOSE_KICKED, "cheating")
    await ann.updates_for(0.2)
    _, room = await call(session, "GET", f"{admin_base}/admin/rooms/{ann.room_id}", AUTH)
    assert [p["name"] for p in room["players"]] == ["ann"]


async def test_dispose_closes_the_room_with_4002(session: aiohttp.ClientSession,
                                                 admin_base: str) -> None:
    ann = await Player.join(session, admin_base, name="ann")
    bob = await Player.join(session, admin_base, name="bob")
    status, data = await call(session, "POST",
                              f"{admin_base}/admin/rooms/{ann.room_id}/dispose", AUTH)
    assert (status, data) == (200, {"disposed": ann.room_id})
    for player in (ann, bob):
        assert (await closed_with(player))[0] == codec.CLOSE_ROOM_CLOSED
    _, listing = await call(session, "GET", f"{admin_base}/admin/rooms", AUTH)
    assert listing["rooms"] == []
    assert (await call(session, "GET", f"{admin_base}/admin/rooms/{ann.room_id}", AUTH)
            )[0] == 404
    assert (await call(session, "POST", f"{admin_base}/admin/rooms/{ann.room_id}/dispose",
                       AUTH))[0] == 404


# -- the page in a real browser ------------------------------------------------------------


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("GAMESERVER_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_the_monitor_page_shows_a_room_and_kicks_a_player(
        browser: Any, session: aiohttp.ClientSession, admin_base: str, tmp_path: Path) -> None:
    ann = await Player.join(session, admin_base, name="ann")
    eve = await Player.join(session, admin_base, name="<b>eve</b>")  # shown as text, not HTML
    hidden = await Player.join(session, admin_base, name="cat", mode="create", private=True)
    for p in (ann, eve):
        for _ in range(3):
            await p.send_input(100, 40)
    await ann.until(lambda: ann.replica.ack == 3)

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    await page.goto(f"{admin_base}/monitor")

    await page.fill("#token", "not-the-token-at-all")
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#login-error:has-text('refused')")
    await page.screenshot(path=str(artifacts(tmp_path) / "monitor-login.png"))
    problems = [p for p in problems if "401" not in p]  # the refused call, as intended

    await page.fill("#token", TOKEN)
    await page.click("#login-form button[type=submit]")
    row = page.locator(f"#rooms tbody tr[data-room='{ann.room_id}']")
    await row.wait_for()
    await page.locator(f"#rooms tbody tr[data-room='{hidden.room_id}']").wait_for()
    assert "private" in await page.locator(
        f"#rooms tbody tr[data-room='{hidden.room_id}']").inner_text()
    assert "2 / 16" in await row.inner_text()
    await page.wait_for_function(
        "() => document.querySelector('#rooms tbody tr').innerText.includes('Hz')"
        " && !document.querySelector('#rooms tbody tr').innerText.includes('\u2013 /')")

    await row.click()
    await page.locator("#d-players tbody tr[data-player]").nth(1).wait_for()
    players_text = await page.locator("#d-players").inner_text()
    assert "ann" in players_text and "<b>eve</b>" in players_text
    assert await page.locator("#d-players b").count() == 0
    await page.locator("#d-state table").first.wait_for()
    state_text = await page.locator("#d-state").inner_text()
    assert "Avatar" in state_text and "Orb" in state_text
    assert await page.evaluate("sessionStorage.getItem('gameserver.adminToken')") == TOKEN

    shot = artifacts(tmp_path) / "monitor.png"
    await page.screenshot(path=str(shot), full_page=True)
    print(f"monitor screenshot: {shot}")

    await page.click(f"#d-players tr[data-player='{eve.player_id}'] button")
    assert (await closed_with(eve))[0] == codec.CLOSE_KICKED
    await page.wait_for_function(
        f"() => !document.querySelector(\"#d-players tr[data-player='{eve.player_id}']\")")

    await page.click("#d-dispose")  # arms
    await page.click("#d-dispose")  # disposes
    assert (await closed_with(ann))[0] == codec.CLOSE_ROOM_CLOSED
    await page.wait_for_selector("#d-gone", state="visible")
    await page.wait_for_function(
        f"() => !document.querySelector(\"#rooms tr[data-room='{ann.room_id}']\")")
    assert await page.locator("#rooms tbody tr").count() == 1  # the private room remains

    # A reload keeps the session; signing out forgets the token.
    await page.reload()
    await page.locator(f"#rooms tbody tr[data-room='{hidden.room_id}']").wait_for()
    await page.click("#sign-out")
    await page.wait_for_selector("#login", state="visible")
    assert await page.evaluate("sessionStorage.getItem('gameserver.adminToken')") is None
    await page.close()
    assert problems == []
