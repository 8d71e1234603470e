"""A guard against drift: docs/PROTOCOL.md, gameserver/codec.py, the JavaScript SDK
(static/sdk/gameserver.js) and what the server actually sends name the same message
kinds, error codes and close codes."""

from __future__ import annotations

import re
from pathlib import Path

from gameserver.core import codec

from .doctables import DOC, table_after

ROOT = Path(__file__).parent.parent
JS = (ROOT / "static" / "sdk" / "gameserver.js").read_text()
SOURCES = {p.name: p.read_text() for p in (ROOT / "gameserver").rglob("*.py")}


def section(title: str) -> str:
    """The document's text from the ``## N. title`` heading to the next ``## `` heading."""
    match = re.search(rf"^## \d+\. {re.escape(title)}\n(.*?)(?=^## |\Z)", DOC, re.M | re.S)
    assert match, f"PROTOCOL.md has no section {title!r}"
    return match.group(1)


def code_of(cell: str) -> str:
    match = re.fullmatch(r"`([a-z_]+)`", cell)
    assert match, f"not a `code` cell: {cell!r}"
    return match.group(1)


# -- message kinds -------------------------------------------------------------------------

def test_message_kinds_agree() -> None:
    socket = section("The game socket")
    documented = {(int(n), name) for n, name in
                  re.findall(r"^\| (\d+) ([A-Z]+) \|", socket, re.M)}
    python = {(value, name.split("_", 1)[1]) for name, value in vars(codec).items()
              if re.fullmatch(r"[CS]_[A-Z]+", name)}
    js = {(int(n), name) for name, n in
          re.findall(r"^export const [CS]_([A-Z]+) = (\d+);", JS, re.M)}
    assert documented == python, "PROTOCOL.md vs codec.py"
    assert js == python, "the SDK vs codec.py"


# -- WebSocket ERROR codes -----------------------------------------------------------------

# How the server sends an ERROR: ProtocolError(code, ...), encode_error(code, ...),
# engine.py's _refuse(seat, code, ...) and game_socket.py's _refuse(ws, close_code, code, ...).
SENT_ERROR = re.compile(r"(?:ProtocolError|encode_error|_refuse\(\s*seat,)\(?\s*\"([a-z_]+)\"|"
                        r"_refuse\(\s*ws,\s*[\w.]+,\s*\"([a-z_]+)\"")


def test_websocket_error_codes_agree_with_what_the_server_sends() -> None:
    documented = {code_of(row[0]) for row in
                  table_after(section("Error codes"), "WebSocket ERROR messages")}
    sent = {a or b for text in SOURCES.values() for a, b in SENT_ERROR.findall(text)}
    assert sent, "the pattern no longer finds how errors are sent"
    assert sent - documented == set(), "sent but not documented"
    assert documented - sent == set(), "documented but never sent"


# -- HTTP error codes ----------------------------------------------------------------------

# The public HTTP API (not the admin or cluster endpoints, which have their own codes).
HTTP_MODULES = ("http_api.py", "matchmaker.py", "auth.py", "origin.py", "game_socket.py")
SENT_HTTP = re.compile(r"(?:MatchmakingError|AuthError|\berror)\(\s*\"([a-z_]+)\"|"
                       r"\"error\":\s*\"([a-z_]+)\"")


def test_http_error_codes_agree_with_what_the_server_sends() -> None:
    # Tolerant of new rows: only the first cell of each row must be a `code`.
    documented = {code_of(row[0]) for row in table_after(section("Error codes"), "HTTP")}
    sent = {a or b for name in HTTP_MODULES for a, b in SENT_HTTP.findall(SOURCES[name])}
    assert sent - documented == set(), "sent by the HTTP API but not documented"
    everywhere = "\n".join(SOURCES.values())
    assert {c for c in documented if f'"{c}"' not in everywhere} == set(), \
        "documented but appears nowhere in gameserver/"
    texts = re.search(r"const MATCHMAKE_TEXT = \{(.*?)\};", JS, re.S)
    assert texts, "the SDK has no MATCHMAKE_TEXT"
    js = set(re.findall(r"^\s*([a-z_]+):", texts.group(1), re.M)) - {"network"}  # client-side
    assert js - documented == set(), "the browser explains codes the document lacks"


# -- close codes ---------------------------------------------------------------------------

def close_rows() -> dict[int, str]:
    """Close code -> its 'who' cell."""
    return {int(row[0]): row[-1] for row in table_after(section("Close codes"), "| code |")}


def test_close_codes_agree() -> None:
    rows = close_rows()
    server_sent = {code for code, who in rows.items() if "server" in who or who == "either"}
    python = {value: name for name, value in vars(codec).items()
              if name.startswith("CLOSE_")}
    assert set(python) == server_sent, "codec.py vs the codes PROTOCOL.md says the server sends"
    js = {int(n) for n in re.findall(r"^\s*[A-Z_]+: (\d+),", JS, re.M)}
    assert js == set(rows), "the SDK's CLOSE vs PROTOCOL.md"


def test_every_documented_server_close_is_sent() -> None:
    """Each code is used by gameserver outside codec.py, or sent by the WebSocket layer
    (aiohttp's frame parser: tests/test_hostile.py and test_protocol_truth.py provoke them)."""
    code_text = "\n".join(text for name, text in SOURCES.items() if name != "codec.py")
    for code, who in close_rows().items():
        if "server" not in who and who != "either":
            continue
        name = next(n for n, v in vars(codec).items() if n.startswith("CLOSE_") and v == code)
        if who == "server (WebSocket layer)":
            assert name not in code_text, f"{code} is sent by gameserver: say so"
        else:
            assert re.search(rf"\b{name}\b", code_text), f"{code} ({name}) is never sent"
