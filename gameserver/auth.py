"""Signed join tokens: an operator's auth service vouches for a player.

A token is ``base64url(claims_json) + "." + base64url(HMAC-SHA256(secret, first part))``
with claims ``{"sub": player id, "name": display name, "exp": unix seconds}``.
When the server has ``--auth-secret``, ``POST /matchmake`` requires one.

Mint one for testing: ``python -m gameserver.auth --secret S --sub 42 --name ann``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import time
from typing import Any


class AuthError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: dict[str, Any], secret: str) -> str:
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(token: Any, secret: str, now: float | None = None) -> dict[str, Any]:
    """The token's claims, or :class:`AuthError` (``auth_invalid`` / ``auth_expired``)."""
    # A token is base64url and one dot: anything else (non-ASCII header bytes, lone
    # surrogates) is refused before it is encoded or decoded.
    if (not isinstance(token, str) or len(token) > 2048 or not token.isascii()
            or token.count(".") != 1):
        raise AuthError("auth_invalid", "the auth token is malformed")
    body, mac = token.split(".")
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(mac)
    except ValueError:
        raise AuthError("auth_invalid", "the auth token is malformed") from None
    if not hmac.compare_digest(given, expected):
        raise AuthError("auth_invalid", "the auth token's signature does not match")
    try:  # only a signed body is parsed
        claims = json.loads(_unb64(body))
    except ValueError:
        raise AuthError("auth_invalid", "the auth token is malformed") from None
    if (not isinstance(claims, dict) or not isinstance(claims.get("sub"), str | int)
            or not isinstance(claims.get("exp"), int | float)):
        raise AuthError("auth_invalid", "the auth token needs 'sub' and 'exp' claims")
    if claims["exp"] < (time.time() if now is None else now):
        raise AuthError("auth_expired", "the auth token has expired")
    return claims


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gameserver.auth",
                                     description="Mint a signed join token.")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--sub", required=True, help="the player's id in your system")
    parser.add_argument("--name", default="player")
    parser.add_argument("--ttl", type=float, default=3600, help="seconds until it expires")
    args = parser.parse_args()
    print(sign({"sub": args.sub, "name": args.name, "exp": int(time.time() + args.ttl)},
               args.secret))


if __name__ == "__main__":
    main()
