"""Settings from flags and ``GAMESERVER_*`` environment variables, validated once.

Each option is declared once, as a field of :class:`Settings` with its default,
parser and help (:func:`setting`); :data:`OPTIONS`, and from it the command line,
the environment, TOML files and ``--help``, are derived from those fields, and
tests/test_settings_doc.py checks the README's table against them. A flag beats
the environment, which beats a TOML file, which beats the default.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields
from typing import Any


class ConfigError(ValueError):
    pass


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise ValueError("must be greater than 0")
        return value
    parse.__name__ = kind.__name__
    return parse


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number, 0-65535 (0 picks a free one)")
    return value


def _tick_rate(text: str) -> float:
    value = float(text)
    if not 1 <= value <= 240:
        raise ValueError("must be between 1 and 240 Hz")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _network(text: str) -> str:
    if text.lower() == "none":
        return ""
    return str(ipaddress.ip_network(text, strict=False))


def _origin(text: str) -> str:
    if not text.startswith(("http://", "https://")) or text.count("/") != 2:
        raise ValueError("must be an origin like https://game.example or http://host:8080")
    return text.lower()


def _log_level(text: str) -> str:
    value = text.upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be debug, info, warning or error")
    return value


def _log_format(text: str) -> str:
    value = text.lower()
    if value not in ("text", "json"):
        raise ValueError("must be text or json")
    return value


def _admin_token(text: str) -> str:
    if text and (len(text) < 16 or not text.isprintable() or any(c.isspace() for c in text)):
        raise ValueError("must be at least 16 characters without spaces (e.g. from: python -c "
                         "'import secrets; print(secrets.token_urlsafe(24))'), or empty for "
                         "no monitor")
    return text


def _url(text: str) -> str:
    if text and not text.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return text.rstrip("/")


def _redis_url(text: str) -> str:
    if text and not text.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a redis://, rediss:// or unix:// URL (or empty: rooms in "
                         "memory)")
    return text


def _workers(text: str) -> int:
    if text.strip().lower() == "auto":
        return os.cpu_count() or 1
    value = int(text)
    if not 1 <= value <= 256:
        raise ValueError("must be 'auto' or a number of processes, 1-256")
    return value


def _optional_path(text: str) -> str:
    return "" if text.strip().lower() in ("", "none") else text


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError("must be true or false")
    return value in ("true", "1", "yes")


def _prefix(text: str) -> str:
    if not text or len(text) > 32 or not all(c.isalnum() or c in "-_." for c in text):
        raise ValueError("must be 1-32 letters, digits, '-', '_' or '.'")
    return text


@dataclass(frozen=True)
class Option:
    """One setting as the command line, the environment, TOML and the docs see it."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    many: bool = False  # repeatable flag; a comma-separated list in the environment
    secret: bool = False  # never echo the value, not even in an error message
    shown: str = ""  # the default as --help and the README show it

    @property
    def env(self) -> str:
        return "GAMESERVER_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class _Spec:
    parse: Callable[[str], Any]
    help: str
    many: bool
    secret: bool
    shown: str | None


def setting(default: Any, parse: Callable[[str], Any], help: str, *, many: bool = False,
            secret: bool = False, shown: str | None = None) -> Any:
    """A :class:`Settings` field: its default, its parser and its help, declared once.

    ``shown`` replaces the default in ``--help`` and the README when the value itself
    would not say it (e.g. "" meaning "from the request").
    """
    return field(default=default, repr=not secret,
                 metadata={"setting": _Spec(parse, help, many, secret, shown)})


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if value != "" else "none"


@dataclass(frozen=True)
class Settings:
    """Every setting: the dataclass is the one declaration :data:`OPTIONS` derives from."""

    host: str = setting("127.0.0.1", str, "address to listen on (0.0.0.0 for every interface)")
    port: int = setting(8000, _port, "TCP port to listen on")
    public_url: str = setting(
        "", _url, "base URL clients reach this server at, used in WebSocket URLs",
        shown="from the request")
    tick_rate: float = setting(20.0, _tick_rate,
                               "default room tick rate in Hz (a game may set its own)")
    max_rooms: int = setting(1000, _positive(int), "rooms this process hosts at most")
    max_players: int = setting(64, _positive(int), "cap on the players of any one room")
    max_spectators: int = setting(64, _positive(int),
                                  "spectators per room at most (a game may allow fewer)")
    reservation_ttl: float = setting(10.0, _positive(float),
                                     "seconds a seat reservation waits for its WebSocket")
    empty_room_grace: float = setting(5.0, _positive(float),
                                      "seconds an empty room lives before it is disposed")
    max_message_size: int = setting(4096, _positive(int),
                                    "largest WebSocket message a client may send, in bytes")
    heartbeat: float = setting(
        15.0, _positive(float),
        "seconds of client silence before a ping; no answer within half of that cuts it")
    send_high_water: int = setting(
        65536, _positive(int),
        "bytes queued for a client before it is treated as behind and skipped")
    stall_timeout: float = setting(10.0, _positive(float),
                                   "seconds a client may stay behind before it is disconnected")
    max_catch_up: int = setting(3, _positive(int),
                                "ticks run back to back after a stall before dropping the rest")
    reconnect_grace: float = setting(
        20.0, _non_negative,
        "seconds a dropped player's seat is kept for a reconnection (0: no reconnection)")
    shutdown_timeout: float = setting(
        10.0, _positive(float),
        "seconds a graceful shutdown may take before the process exits anyway")
    rate_limit_messages: float = setting(
        60.0, _positive(float), "messages per second a connection may send (bursts of twice that)")
    rate_limit_bytes: int = setting(
        65536, _positive(int), "bytes per second a connection may send (bursts of twice that)")
    rate_limit_control: float = setting(
        20.0, _positive(float),
        "pings, pongs and message fragments per second a connection may send (bursts of "
        "twice that); over it pings go unanswered, and after 1 s the socket is closed")
    message_rate: float = setting(
        2.0, _positive(float),
        "room messages (MESSAGE, e.g. chat) per second a player may send (bursts of three "
        "times that)")
    message_bytes: int = setting(
        1024, _positive(int),
        "bytes of room messages per second a player may send (bursts of three times that)")
    max_connections_per_ip: int = setting(
        64, _positive(int),
        "open connections per client address, HTTP and WebSocket alike (exempt networks "
        "excepted)")
    ip_limit_exempt: tuple[str, ...] = setting(
        ("127.0.0.0/8", "::1/128"), _network,
        "networks exempt from the per-address limit (repeatable; 'none' for none)", many=True)
    max_reservations: int = setting(10000, _positive(int),
                                    "seat reservations waiting for their WebSocket, at most")
    http_timeout: float = setting(
        5.0, _positive(float),
        "seconds an HTTP request's headers, and then its body, may take to arrive; "
        "idle keep-alive connections close after it too")
    matchmake_rate: float = setting(
        5.0, _positive(float),
        "matchmaking requests per second per client address and per signed identity "
        "(bursts of four times that; addresses in --ip-limit-exempt are not limited)")
    room_creations_per_minute: float = setting(
        12.0, _positive(float),
        "rooms one client address or signed identity may create per minute (that many at "
        "once, then evenly)")
    max_pending_per_client: int = setting(
        8, _positive(int),
        "seat reservations one client address or signed identity may hold unredeemed")
    allowed_origins: tuple[str, ...] = setting(
        (), _origin,
        "browser origins allowed to matchmake and connect, e.g. https://game.example "
        "(repeatable); same-origin and loopback pages are always allowed", many=True)
    auth_secret: str = setting(
        "", str, "HMAC secret for signed join tokens; when set, POST /matchmake requires one",
        secret=True)
    redis: str = setting(
        "", _redis_url,
        "Redis URL of the shared room directory (e.g. redis://127.0.0.1:6379/0); "
        "processes on the same Redis form one cluster (default: rooms in memory)",
        secret=True)
    cluster_prefix: str = setting("gs", _prefix, "prefix of this cluster's Redis keys")
    node_ttl: float = setting(
        10.0, _positive(float),
        "seconds a node's presence lives in Redis without a heartbeat (every third of it); "
        "a dead node's rooms leave the listings within that")
    workers: int = setting(
        1, _workers,
        "processes to serve with, each on its own port from --port ('auto': one per CPU); "
        "more than 1 share rooms through --redis, or without it through a private "
        "redis-server the supervisor runs (this machine only)")
    games: tuple[str, ...] = setting(
        (), str, "extra game rooms to serve, as module:Class (repeatable); one named like a "
        "built-in game replaces it", many=True)
    log_level: str = setting("INFO", _log_level, "log level: debug, info, warning or error",
                             shown="info")
    log_format: str = setting(
        "text", _log_format,
        "log format: text (for people) or json (one object per line, for log shippers)")
    record: str = setting(
        "", _optional_path,
        "directory to record every room into, one file per room (replayable, listed at "
        "/admin/recordings); empty: no recording", shown="none")
    record_max_bytes: int = setting(
        64 * 1024 * 1024, _positive(int),
        "bytes a recording file may reach before the room's recording goes on in a new part")
    record_compress: bool = setting(
        False, _bool, "gzip each recording file once it is complete (true or false)",
        shown="false")
    admin_token: str = setting(
        "", _admin_token,
        "bearer token for the /monitor page and the /admin API, at least 16 characters; "
        "both are off without one", secret=True)
    config: str = setting(
        "", str,
        "TOML file of settings named as the options (e.g. tick_rate = 30); "
        "flags and variables win over it")


def _option(f: Field[Any]) -> Option:
    spec = f.metadata.get("setting")
    if not isinstance(spec, _Spec):
        raise TypeError(f"Settings.{f.name} must be declared with setting()")
    shown = _shown(f.default) if spec.shown is None else spec.shown
    return Option(f.name, spec.parse, f.default, spec.help, spec.many, spec.secret, shown)


# What the command line, the environment, TOML files and --help are generated from.
OPTIONS: tuple[Option, ...] = tuple(_option(f) for f in fields(Settings))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gameserver",
        description="Authoritative real-time game server: fixed-tick rooms, msgpack state "
                    "deltas over WebSockets. Every option can also be set with the environment "
                    "variable named after it (a flag wins over the variable).",
    )
    for opt in OPTIONS:
        parser.add_argument(opt.flag, dest=opt.name, metavar=opt.name.upper(),
                            action="append" if opt.many else "store", default=None,
                            help=f"{opt.help} [env {opt.env}] (default: {opt.shown})")
    return parser


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
         ) -> Settings:
    """Settings from ``argv`` and ``environ``; raises :class:`ConfigError` with every problem."""
    environ = os.environ if environ is None else environ
    args = vars(build_parser().parse_args(argv))
    values: dict[str, Any] = {}
    problems: list[str] = []
    path = args["config"] or environ.get("GAMESERVER_CONFIG", "")
    in_file = _read_file(path, problems) if path else {}
    for opt in OPTIONS:
        raw = args[opt.name]
        source = opt.flag
        if raw is None and opt.env in environ:
            raw = environ[opt.env]
            source = opt.env
            if opt.many:
                raw = [p.strip() for p in raw.split(",") if p.strip()]
        if raw is None and opt.name in in_file:
            raw = in_file[opt.name]
            source = f"{path}: {opt.name}"
        if raw is None:
            values[opt.name] = opt.default
            continue
        try:
            values[opt.name] = (tuple(opt.parse(r) for r in raw) if opt.many
                                else opt.parse(raw))
        except ValueError as exc:
            problems.append(f"{source}={'<hidden>' if opt.secret else repr(raw)}: {exc}")
    if problems:
        raise ConfigError("invalid settings:\n  " + "\n  ".join(problems))
    return Settings(**values)


def _read_file(path: str, problems: list[str]) -> dict[str, Any]:
    """The settings of a TOML file as raw strings (lists for repeatable options)."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        problems.append(f"config file {path!r}: {exc.strerror or exc}")
        return {}
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"config file {path!r}: not valid TOML: {exc}")
        return {}
    by_name = {o.name: o for o in OPTIONS if o.name != "config"}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        opt = by_name.get(name)
        if opt is None:
            problems.append(f"{path}: unknown setting {key!r} (keys are option names, "
                            "e.g. tick_rate)")
        elif isinstance(value, list) and opt.many:
            out[name] = [_toml_text(v) for v in value]
        elif isinstance(value, list | dict):
            problems.append(f"{path}: {key} must be a single value")
        elif opt.many:
            out[name] = [p.strip() for p in _toml_text(value).split(",") if p.strip()]
        else:
            out[name] = _toml_text(value)
    return out


def _toml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
