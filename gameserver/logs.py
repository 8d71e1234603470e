"""Logging set-up: human-readable text or JSON lines, with room and player ids.

Code that knows which room or player a message is about passes them as
``extra={"room_id": ..., "player_id": ...}``; both formats show them::

    2025-01-01T12:00:00.123Z INFO gameserver.rooms: created arena room k3J9xQ_a [room=k3J9xQ_a]
    {"time": "2025-01-01T12:00:00.123Z", "level": "INFO", "logger": "gameserver.rooms",
     "message": "created arena room k3J9xQ_a", "room_id": "k3J9xQ_a"}
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

CONTEXT = ("room_id", "player_id")  # the extra= fields shown when a record has them


def _timestamp(record: logging.LogRecord) -> str:
    ms = int(record.msecs)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{ms:03d}Z"


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [room=... player=...]``, then any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        context = " ".join(f"{key.removesuffix('_id')}={getattr(record, key)}"
                           for key in CONTEXT if getattr(record, key, None) is not None)
        if context:
            line += f" [{context}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, room_id/player_id, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send every log record at ``level`` or above to ``stream`` (stderr) as ``fmt``."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
