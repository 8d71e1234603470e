"""Settings from flags and ``GAMESERVER_*`` environment variables, validated once.

Each option is declared once in :data:`OPTIONS`; the command line, the
environment and ``--help`` are all generated from that table. A flag beats
the environment, which beats the default.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
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


def _prefix(text: str) -> str:
    if not text or len(text) > 32 or not all(c.isalnum() or c in "-_." for c in text):
        raise ValueError("must be 1-32 letters, digits, '-', '_' or '.'")
    return text


@dataclass(frozen=True)
class Option:
    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    many: bool = False  # repeatable flag; a comma-separated list in the environment
    secret: bool = False  # never echo the value, not even in an error message

    @property
    def env(self) -> str:
        return "GAMESERVER_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("host", str, "127.0.0.1", "address to listen on (0.0.0.0 for every interface)"),
    Option("port", _port, 8000, "TCP port to listen on"),
    Option("public_url", _url, "",
           "base URL clients reach this server at, used in WebSocket URLs "
           "(default: taken from each request's Host header)"),
    Option("tick_rate", _tick_rate, 20.0, "default room tick rate in Hz (a game may set its own)"),
    Option("max_rooms", _positive(int), 1000, "rooms this process hosts at most"),
    Option("max_players", _positive(int), 64, "cap on the players of any one room"),
    Option("reservation_ttl", _positive(float), 10.0,
           "seconds a seat reservation waits for its WebSocket"),
    Option("empty_room_grace", _positive(float), 5.0,
           "seconds an empty room lives before it is disposed"),
    Option("max_message_size", _positive(int), 4096,
           "largest WebSocket message a client may send, in bytes"),
    Option("heartbeat", _positive(float), 15.0,
           "seconds of client silence before a ping; no answer within half of that cuts it"),
    Option("send_high_water", _positive(int), 65536,
           "bytes queued for a client before it is treated as behind and skipped"),
    Option("stall_timeout", _positive(float), 10.0,
           "seconds a client may stay behind before it is disconnected"),
    Option("max_catch_up", _positive(int), 3, "ticks run back to back after a stall before "
                                               "dropping the rest"),
    Option("reconnect_grace", _non_negative, 20.0,
           "seconds a dropped player's seat is kept for a reconnection (0: no reconnection)"),
    Option("shutdown_timeout", _positive(float), 10.0,
           "seconds a graceful shutdown may take before the process exits anyway"),
    Option("rate_limit_messages", _positive(float), 60.0,
           "messages per second a connection may send (bursts of twice that)"),
    Option("rate_limit_bytes", _positive(int), 65536,
           "bytes per second a connection may send (bursts of twice that)"),
    Option("rate_limit_control", _positive(float), 20.0,
           "pings, pongs and message fragments per second a connection may send (bursts of "
           "twice that); over it pings go unanswered, and after 1 s the socket is closed"),
    Option("message_rate", _positive(float), 2.0,
           "room messages (MESSAGE, e.g. chat) per second a player may send (bursts of three "
           "times that)"),
    Option("message_bytes", _positive(int), 1024,
           "bytes of room messages per second a player may send (bursts of three times that)"),
    Option("max_connections_per_ip", _positive(int), 64,
           "open connections per client address, HTTP and WebSocket alike (exempt networks "
           "excepted)"),
    Option("ip_limit_exempt", _network, ("127.0.0.0/8", "::1/128"),
           "networks exempt from the per-address limit (repeatable; 'none' for none)",
           many=True),
    Option("max_reservations", _positive(int), 10000,
           "seat reservations waiting for their WebSocket, at most"),
    Option("http_timeout", _positive(float), 5.0,
           "seconds an HTTP request's headers, and then its body, may take to arrive; "
           "idle keep-alive connections close after it too"),
    Option("matchmake_rate", _positive(float), 5.0,
           "matchmaking requests per second per client address and per signed identity "
           "(bursts of four times that; addresses in --ip-limit-exempt are not limited)"),
    Option("room_creations_per_minute", _positive(float), 12.0,
           "rooms one client address or signed identity may create per minute (that many at "
           "once, then evenly)"),
    Option("max_pending_per_client", _positive(int), 8,
           "seat reservations one client address or signed identity may hold unredeemed"),
    Option("allowed_origins", _origin, (),
           "browser origins allowed to matchmake and connect, e.g. https://game.example "
           "(repeatable); same-origin and loopback pages are always allowed", many=True),
    Option("auth_secret", str, "",
           "HMAC secret for signed join tokens; when set, POST /matchmake requires one"),
    Option("redis", _redis_url, "",
           "Redis URL of the shared room directory (e.g. redis://127.0.0.1:6379/0); "
           "processes on the same Redis form one cluster (default: rooms in memory)",
           secret=True),
    Option("cluster_prefix", _prefix, "gs", "prefix of this cluster's Redis keys"),
    Option("node_ttl", _positive(float), 10.0,
           "seconds a node's presence lives in Redis without a heartbeat (every third of it); "
           "a dead node's rooms leave the listings within that"),
    Option("workers", _workers, 1,
           "processes to serve with, each on its own port from --port ('auto': one per CPU); "
           "more than 1 needs --redis"),
    Option("games", str, (), "extra game rooms to serve, as module:Class (repeatable)",
           many=True),
    Option("log_level", _log_level, "INFO", "log level: debug, info, warning or error"),
    Option("log_format", _log_format, "text",
           "log format: text (for people) or json (one object per line, for log shippers)"),
    Option("admin_token", _admin_token, "",
           "bearer token for the /monitor page and the /admin API, at least 16 characters; "
           "both are off without one", secret=True),
    Option("config", str, "",
           "TOML file of settings named as the options (e.g. tick_rate = 30); "
           "flags and variables win over it"),
)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""
    tick_rate: float = 20.0
    max_rooms: int = 1000
    max_players: int = 64
    reservation_ttl: float = 10.0
    empty_room_grace: float = 5.0
    max_message_size: int = 4096
    heartbeat: float = 15.0
    send_high_water: int = 65536
    stall_timeout: float = 10.0
    max_catch_up: int = 3
    reconnect_grace: float = 20.0
    shutdown_timeout: float = 10.0
    rate_limit_messages: float = 60.0
    rate_limit_bytes: int = 65536
    rate_limit_control: float = 20.0
    message_rate: float = 2.0
    message_bytes: int = 1024
    max_connections_per_ip: int = 64
    ip_limit_exempt: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    max_reservations: int = 10000
    http_timeout: float = 5.0
    matchmake_rate: float = 5.0
    room_creations_per_minute: float = 12.0
    max_pending_per_client: int = 8
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)
    auth_secret: str = field(default="", repr=False)
    redis: str = field(default="", repr=False)
    cluster_prefix: str = "gs"
    node_ttl: float = 10.0
    workers: int = 1
    games: tuple[str, ...] = field(default_factory=tuple)
    log_level: str = "INFO"
    log_format: str = "text"
    admin_token: str = field(default="", repr=False)
    config: str = ""


assert [f.name for f in fields(Settings)] == [o.name for o in OPTIONS], "OPTIONS and Settings"


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
                            help=f"{opt.help} [env {opt.env}] (default: {_show(opt.default)})")
    return parser


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "none" if not value else ",".join(value)
    return repr(value) if value == "" else str(value)


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
