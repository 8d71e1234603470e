"""Every JSON error of the HTTP edge has one shape, built in one place (web/edge.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gameserver.web.edge import HttpError, error_body, error_response

PACKAGE = Path(__file__).resolve().parent.parent / "gameserver"


def test_an_error_is_its_code_and_message_in_json() -> None:
    response = error_response(403, "origin_not_allowed", "no", headers={"X-A": "1"})
    assert response.status == 403
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["X-A"] == "1" and "Retry-After" not in response.headers
    assert json.loads(response.body) == {"error": "origin_not_allowed", "message": "no"}
    # The raw body (a refused TCP connection, connections.py) is the same bytes.
    assert response.body == error_body("origin_not_allowed", "no")


def test_retry_after_is_whole_seconds_in_the_body_and_the_header() -> None:
    response = error_response(429, "rate_limited", "slow down", retry_after=1.2)
    assert response.headers["Retry-After"] == "2"
    assert json.loads(response.body) == {"error": "rate_limited", "message": "slow down",
                                         "retry_after": 2}
    # Never "retry after 0": a client would come straight back.
    assert error_response(429, "rate_limited", "x", retry_after=0.01).headers["Retry-After"] == "1"


def test_http_error_answers_with_the_same_helper() -> None:
    response = HttpError("bad_request", "bad body", 413, {"Retry-After": "1"}).response()
    assert (response.status, response.headers["Retry-After"]) == (413, "1")
    assert response.body == error_body("bad_request", "bad body")


def test_no_module_builds_an_error_body_by_hand() -> None:
    hand_built = re.compile(r"""\{\s*["']error["']\s*:""")
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if p.name != "edge.py" and hand_built.search(p.read_text())]
    assert offenders == []
