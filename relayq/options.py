"""Checks of job options on the Python side, mirroring the scripts' own checks so that a bad
value fails before anything is sent, with a message that names the problem."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import InvalidArgument, InvalidPayload, PayloadTooLarge

TEN_YEARS_MS = 315_576_000_000
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 128  # arrays and objects within a payload or result (serde_json's default)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def check_int(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise InvalidArgument(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def check_str(value: Any, name: str, max_bytes: int) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{name} must be a non-empty string")
    if len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidArgument(f"{name} must be at most {max_bytes} bytes")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise InvalidArgument(f"{name} must be valid Unicode (no lone surrogates)")
    return value


def epoch_ms(when: datetime | int) -> int:
    """Epoch milliseconds for a datetime (naive means UTC) or an int already in ms."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return int(when.timestamp() * 1000)
    return check_int(when, "run_at", 0, 2 * TEN_YEARS_MS + 1_800_000_000_000)


def check_payload_size(text: str, limit: int, what: str = "payload") -> str:
    size = len(text.encode())
    if size > limit:
        raise PayloadTooLarge(f"{what} is {size} bytes, over the limit of {limit}")
    return text


def json_too_deep(text: str) -> bool:
    """Whether the arrays and objects of a JSON text nest deeper than MAX_JSON_DEPTH."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:  # the common case: no scan
        return False
    depth = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


def check_json_text(text: str, what: str = "payload") -> str:
    """`text` (JSON from the codec) unless the scripts' cjson would refuse it, or it could not
    always be shown again (InvalidPayload): nested deeper than MAX_JSON_DEPTH (rendering
    recurses once per level), or with a lone UTF-16 surrogate in a string (Python escapes one
    as `\\udXXX`; cjson refuses it)."""
    if json_too_deep(text):
        raise InvalidPayload(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
    if _SURROGATE.search(text):  # rare: only then decode to look closer
        try:
            json.dumps(json.loads(text), ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise InvalidPayload(f"{what} has a lone surrogate in a string: not valid "
                                 "Unicode") from None
    return text


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Per-job options of an enqueue; every field optional (None = the queue's default)."""

    type: str | None = None
    priority: int = 0
    delay_ms: int | None = None
    run_at: datetime | int | None = None
    max_attempts: int | None = None
    idempotency_key: str | None = None
    timeout_ms: int | None = None
    backoff_base_ms: int | None = None
    backoff_cap_ms: int | None = None

    def script_args(self) -> list[str]:
        """The nine option fields of enqueue.lua (after the payload), checked."""
        if self is DEFAULT_OPTIONS:
            return DEFAULT_ARGS
        if self.delay_ms is not None and self.run_at is not None:
            raise InvalidArgument("give delay_ms or run_at, not both")

        def opt_int(value: int | None, name: str, lo: int, hi: int) -> str:
            return "" if value is None else str(check_int(value, name, lo, hi))

        return [
            "" if self.type is None else check_str(self.type, "type", 200),
            str(check_int(self.priority, "priority", 0, 255)),
            opt_int(self.delay_ms, "delay_ms", 0, TEN_YEARS_MS),
            "" if self.run_at is None else str(epoch_ms(self.run_at)),
            opt_int(self.max_attempts, "max_attempts", 1, 1000),
            "" if self.idempotency_key is None
            else check_str(self.idempotency_key, "idempotency_key", 512),
            opt_int(self.timeout_ms, "timeout_ms", 1, TEN_YEARS_MS),
            opt_int(self.backoff_base_ms, "backoff_base_ms", 0, TEN_YEARS_MS),
            opt_int(self.backoff_cap_ms, "backoff_cap_ms", 0, TEN_YEARS_MS),
        ]


DEFAULT_OPTIONS = JobOptions()
DEFAULT_ARGS = ["", "0", "", "", "", "", "", "", ""]
