"""relayq.rfc3339: the one parser and formatter of times (HTTP bodies, the CLI, the SDK,
snapshots). It reads RFC 3339 `date-time` and nothing else that datetime.fromisoformat takes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from relayq.errors import InvalidArgument
from relayq.options import check_run_at
from relayq.rfc3339 import format_ms, parse_ms, to_epoch_ms

MS_2030 = 1_893_456_000_000  # 2030-01-01T00:00:00Z


@pytest.mark.parametrize(("text", "ms"), [
    ("2030-01-01T00:00:00Z", MS_2030),
    ("2030-01-01T00:00:00.5Z", MS_2030 + 500),
    ("2030-01-01T00:00:00.123Z", MS_2030 + 123),
    ("2030-01-01T00:00:00.123999Z", MS_2030 + 123),      # microseconds: kept to the ms
    ("2030-01-01t00:00:00z", MS_2030),                     # T and Z in either case
    ("2030-01-01T01:30:00+01:30", MS_2030),
    ("2029-12-31T23:00:00-01:00", MS_2030),
    ("2030-01-01T00:00:00-00:00", MS_2030),
    ("1970-01-01T00:00:00.001Z", 1),
    ("2028-02-29T00:00:00Z", 1_835_395_200_000),           # a leap day
])
def test_rfc3339_times_are_read_to_the_millisecond(text: str, ms: int) -> None:
    assert parse_ms(text, "t") == ms


@pytest.mark.parametrize("text", [
    "2030-W01-1T00:00Z",            # an ISO week date (fromisoformat took it)
    "2030-001T00:00:00Z",           # an ordinal date
    "2030-01-01T00:00:00.1234567Z",  # 7 fraction digits (fromisoformat took them)
    "2030-01-01T00:00:00.Z",
    "2030-01-01T00:00:00",          # no time zone
    "2030-01-01",
    "2030-01-01T00:00Z",            # no seconds
    "2030-01-01 00:00:00Z",
    "20300101T000000Z",             # basic format
    "2030-01-01T00:00:00+01",       # offset without minutes
    "2030-01-01T00:00:00+0100",
    "2030-01-01T00:00:00+24:00",
    "2030-01-01T00:00:00+01:60",
    "2030-02-30T00:00:00Z",
    "2030-01-01T24:00:00Z",
    "2030-12-31T23:59:60Z",         # a leap second: datetime cannot hold it
    "0000-01-01T00:00:00Z",
    "２０３０-01-01T00:00:00Z",       # fullwidth digits
    "2030-01-01T00:00:00\u00b2Z",
    " 2030-01-01T00:00:00Z",
    "2030-01-01T00:00:00Z\n",
    "2030-01-01T00:00:00.000000000000000000000000000000Z",
    "", "tomorrow", None, 1_893_456_000_000,
])
def test_anything_else_is_refused_naming_the_field(text: object) -> None:
    with pytest.raises(InvalidArgument, match="^run_at "):
        parse_ms(text, "run_at")


@pytest.mark.parametrize("ms", [0, 1, 999, MS_2030 + 7, 32_503_680_000_000 - 1])
def test_what_is_written_reads_back(ms: int) -> None:
    text = format_ms(ms)
    assert text is not None and len(text) == 24 and text.endswith("Z")
    assert parse_ms(text, "t") == ms


def test_datetimes_convert_exactly() -> None:
    when = datetime(2030, 1, 1, 1, 0, 0, 123_999, tzinfo=timezone(timedelta(hours=1)))
    assert to_epoch_ms(when) == MS_2030 + 123
    assert to_epoch_ms(datetime(2030, 1, 1)) == MS_2030  # naive means UTC
    assert check_run_at(datetime(2030, 1, 1, tzinfo=UTC)) == MS_2030
