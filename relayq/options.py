"""Checks of job options on the Python side, mirroring the scripts' own checks so that a bad
value fails before anything is sent, with a message that names the problem. The limits checked
are relayq.limits'; these are the checks themselves (integers, strings, digit strings, run_at,
payload size and JSON depth)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import InvalidArgument, InvalidPayload, PayloadTooLarge
from .limits import (
    GROUP_PATTERN,
    MAX_ATTEMPTS,
    MAX_DURATION_MS,
    MAX_IDEMPOTENCY_KEY_BYTES,
    MAX_JSON_DEPTH,
    MAX_PRIORITY,
    MAX_TYPE_BYTES,
    MIN_PRIORITY,
)
from .rfc3339 import to_epoch_ms

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_GROUP = re.compile(GROUP_PATTERN)


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


def check_group(value: Any) -> str:
    """A group name (fair queues: a tenant id, say), or InvalidArgument."""
    if not isinstance(value, str) or not _GROUP.fullmatch(value):
        raise InvalidArgument(f"group must match {GROUP_PATTERN}, got {value!r:.60}")
    return value


def is_digits(text: object, max_digits: int | None = None) -> bool:
    """Whether `text` is 1 to `max_digits` ASCII digits: the only numeric text relayq reads
    (str.isdigit also accepts "²" and other Unicode digits, and int() accepts "٣", " 5" and
    "1_0")."""
    return (isinstance(text, str) and 0 < len(text) <= (max_digits or len(text))
            and text.isascii() and text.isdigit())


def check_run_at(when: datetime | int) -> int:
    """Epoch ms of a run_at (a datetime, naive meaning UTC, or epoch ms), at most
    MAX_DURATION_MS from now: the one bound of run_at, which enqueue.lua applies on the Redis
    clock; this check, on the local clock, makes a mistake fail before anything is sent."""
    if isinstance(when, datetime):
        when = to_epoch_ms(when)
    return check_int(when, "run_at", 0, int(time.time() * 1000) + MAX_DURATION_MS)


def check_fraction(value: Any, name: str = "progress") -> float:
    """A number in [0, 1] (a job's progress), or InvalidArgument."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidArgument(f"{name} must be a number between 0 and 1, got {value!r}")
    return float(value)


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
    group: str | None = None  # fair queues (docs/fair-queues.md)
    # workflows (relayq/workflows.py): parent job ids, and 'cancel' (default) or 'run' when one
    # of them fails; not among script_args (enqueue_deps.lua takes them after these)
    depends_on: Sequence[str] | None = None
    on_parent_failure: str | None = None

    def script_args(self) -> list[str]:
        """The ten option fields of enqueue.lua (after the payload, before the trace), checked."""
        if self is DEFAULT_OPTIONS:
            return DEFAULT_ARGS
        if self.delay_ms is not None and self.run_at is not None:
            raise InvalidArgument("give delay_ms or run_at, not both")

        def opt_int(value: int | None, name: str, lo: int, hi: int) -> str:
            return "" if value is None else str(check_int(value, name, lo, hi))

        return [
            "" if self.type is None else check_str(self.type, "type", MAX_TYPE_BYTES),
            str(check_int(self.priority, "priority", MIN_PRIORITY, MAX_PRIORITY)),
            opt_int(self.delay_ms, "delay_ms", 0, MAX_DURATION_MS),
            "" if self.run_at is None else str(check_run_at(self.run_at)),
            opt_int(self.max_attempts, "max_attempts", 1, MAX_ATTEMPTS),
            "" if self.idempotency_key is None
            else check_str(self.idempotency_key, "idempotency_key", MAX_IDEMPOTENCY_KEY_BYTES),
            opt_int(self.timeout_ms, "timeout_ms", 1, MAX_DURATION_MS),
            opt_int(self.backoff_base_ms, "backoff_base_ms", 0, MAX_DURATION_MS),
            opt_int(self.backoff_cap_ms, "backoff_cap_ms", 0, MAX_DURATION_MS),
            "" if self.group is None else check_group(self.group),
        ]


DEFAULT_OPTIONS = JobOptions()
DEFAULT_ARGS = ["", "0", "", "", "", "", "", "", "", ""]
