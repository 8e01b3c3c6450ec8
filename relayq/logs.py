"""Structured logging for the worker and the server: `event key=value ...` lines for people
(`--log-format text`) or one JSON object per line for machines (`--log-format json`).

Call sites log an event name as the message and the fields as `extra={"fields": {...}}`, via
`log_event`. Nothing secret is ever passed as a field (API keys are logged by id only).

A logging thread does the formatting and writing: a call only puts its record on a
`queue.SimpleQueue`, so threads logging at once (the server logs every request) never wait on
a lock for each other or for stderr. `stop_logging()` writes out what is queued.
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import sys
import time
from logging.handlers import QueueHandler, QueueListener
from typing import Any


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields})


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields = getattr(record, "fields", {})
        text = " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        line = f"{stamp}.{int(record.msecs):03d}Z {record.levelname:<7} {record.getMessage()}"
        line = f"{line} {text}" if text else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or not text or '"' in text) else text


class _LockFreeQueueHandler(QueueHandler):
    """Hands records to the logging thread as they are. `logging.Handler.handle` would take the
    handler's lock around `emit`; `SimpleQueue.put` needs none."""

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        if self.filter(record):
            self.emit(record)
            return True
        return False

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record  # formatted by the logging thread, not by the caller


_listener: QueueListener | None = None


def stop_logging() -> None:
    """Writes out every queued record and ends the logging thread (at exit, or before a
    process ends without running atexit)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    global _listener
    stop_logging()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = QueueListener(records, handler)
    _listener.start()
    root = logging.getLogger()
    root.handlers[:] = [_LockFreeQueueHandler(records)]
    root.setLevel(level.upper())
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


atexit.register(stop_logging)
