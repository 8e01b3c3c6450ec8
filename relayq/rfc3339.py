"""RFC 3339 times, the one parser and formatter of the package.

Every time relayq shows is written by `format_ms` as UTC with milliseconds
(`2026-11-22T20:07:51.123Z`). Every time it reads (a `run_at` in an HTTP body or on the command
line, the times of a snapshot, the times of a job view the SDK receives) goes through
`parse_ms`, which accepts RFC 3339's `date-time` and nothing else:
`YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, `T` and `Z` in either case, with a fraction
of 1 to 6 digits (up to microseconds, kept to the millisecond, truncated). Refused: a missing
time zone, week or ordinal dates (`2030-W01-1`), basic format (`20300101T000000Z`), hours
without minutes (`+01`), 7 or more fraction digits, a leap second (`:60`), non-ASCII digits.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta

from .errors import InvalidArgument

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_LENGTH = 40
DATE_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))",
    re.ASCII)
_ONE_MS = timedelta(milliseconds=1)


def format_ms(ms: int | None) -> str | None:
    """RFC 3339 UTC with milliseconds, e.g. 2026-11-22T20:07:51.123Z; None stays None."""
    if ms is None:
        return None
    return (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{ms % 1000:03d}Z")


def to_epoch_ms(when: datetime) -> int:
    """Epoch ms of a datetime (naive means UTC), exactly (no float on the way)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - EPOCH) // _ONE_MS


@functools.lru_cache(maxsize=4096)
def _epoch_seconds(date: str, time: str) -> int:
    """Seconds since the epoch of a UTC date and time of day; cached, since the times a
    snapshot holds share few distinct seconds. ValueError for a day or hour that does not
    exist."""
    return (datetime.fromisoformat(f"{date}T{time}+00:00") - EPOCH) // timedelta(seconds=1)


def parse_ms(value: object, name: str) -> int:
    """Epoch ms of an RFC 3339 time (see the module docstring); InvalidArgument naming `name`
    otherwise."""
    match = DATE_TIME.fullmatch(value) if isinstance(value, str) and len(value) <= MAX_LENGTH \
        else None
    if match is None:
        raise InvalidArgument(f"{name} must be an RFC 3339 time with a time zone, like "
                              f"2030-01-02T03:04:05.678Z, got {str(value)[:MAX_LENGTH]!r}")
    date, time, fraction, sign, hours, minutes = match.groups()
    try:
        seconds = _epoch_seconds(date, time)
    except ValueError:
        raise InvalidArgument(f"{name} is not a valid date and time: {value!r}") from None
    if sign is not None:
        if int(hours) > 23 or int(minutes) > 59:
            raise InvalidArgument(f"{name} has an invalid time zone offset: {value!r}")
        offset = int(hours) * 3600 + int(minutes) * 60
        seconds -= offset if sign == "+" else -offset
    return seconds * 1000 + (int(fraction[:3].ljust(3, "0")) if fraction else 0)
