"""The fair-queue operations of a queue (mixins, so that queue.py stays about jobs): a group's
own limits, and the page of groups. `GroupOps` holds them without I/O, as generators yielding
`Scripts` steps like QueueOps' (relayq/steps.py); `GroupOperations` is the sync face
`relayq.Queue` drives them with; relayq.aio.Queue has the async twins. The queue-wide settings
(max_running, group_max_running, group_rate, group_burst) go through `Queue.configure`.
docs/fair-queues.md has the design; lua/lib/groups.lua the data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import scripts
from .errors import InvalidArgument
from .limits import (
    DEFAULT_PAGE,
    MAX_BURST,
    MAX_CURSOR_DIGITS,
    MAX_GROUPS_PAGE,
    MAX_RATE,
    MAX_RUNNING_LIMIT,
    MIN_RATE,
)
from .options import check_group, check_int, is_digits
from .protocol import Call, Scripts, refuse

if TYPE_CHECKING:
    from .keys import QueueKeys
    from .protocol import Op

GROUP_LIMITS, GROUPS = scripts.script("group_limits"), scripts.script("groups")
GROUP_STATES = ("ready", "limited", "throttled", "idle")


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """One group of a queue: its ready and running jobs, its own limits (None: the queue's
    default), and where it is: `ready` (in the round robin), `limited` (at its concurrency
    limit), `throttled` (waiting for a token of its bucket) or `idle` (no ready job)."""

    group: str
    ready: int
    running: int
    max_running: int | None
    rate: float | None
    burst: int | None
    state: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "ready": self.ready,
            "running": self.running,
            "max_running": self.max_running,
            "rate": self.rate,
            "burst": self.burst,
            "state": self.state,
        }


@dataclass(frozen=True, slots=True)
class GroupsPage:
    """A page of a queue's groups, the largest backlog first, and the queue's group figures:
    `total` groups known, `with_ready` (groups with ready jobs), `limited` and `throttled`
    (groups held back now), and its settings (`defaults`: max_running, group_max_running,
    group_rate, group_burst; None when not set)."""

    groups: list[GroupInfo]
    next_cursor: str | None
    total: int
    with_ready: int
    limited: int
    throttled: int
    defaults: dict[str, float | int | None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": [g.to_dict() for g in self.groups],
            "next_cursor": self.next_cursor,
            "total": self.total,
            "with_ready": self.with_ready,
            "limited": self.limited,
            "throttled": self.throttled,
            "defaults": self.defaults,
        }


def groups_page_from_view(view: dict[str, Any]) -> GroupsPage:
    """A GroupsPage from its JSON view (GET /api/queues/{q}/groups)."""
    return GroupsPage(
        [GroupInfo(**g) for g in view["groups"]],
        view["next_cursor"],
        view["total"],
        view["with_ready"],
        view["limited"],
        view["throttled"],
        view["defaults"],
    )


def _number(text: Any, kind: Any) -> Any:
    return None if text in ("", None) else kind(float(text)) if kind is int else kind(text)


def _parse_page(reply: list[Any]) -> GroupsPage:
    if reply[0] != "ok":
        refuse(reply)
    d = reply[5]
    defaults = {
        name: _number(d[i], float if name == "group_rate" else int) or None
        for i, name in enumerate(("max_running", "group_max_running", "group_rate", "group_burst"))
    }
    groups = [
        GroupInfo(
            reply[i],
            int(float(f[0])),
            int(f[1]),
            _number(f[2], int),
            _number(f[3], float),
            _number(f[4], int),
            f[5],
        )
        for i, f in zip(range(7, len(reply), 2), reply[8::2], strict=True)
    ]
    return GroupsPage(
        groups,
        reply[6] or None,
        int(reply[1]),
        int(reply[2]),
        int(reply[3]),
        int(reply[4]),
        defaults,
    )


def _ok(reply: list[Any]) -> None:
    if reply[0] != "ok":
        refuse(reply)


def check_group_limits(max_running: Any, rate: Any, burst: Any) -> tuple[str, str, str]:
    """The three script arguments of a group's limits ('' for the queue's default); a bad
    value raises InvalidArgument, as the script would."""
    if max_running is not None:
        check_int(max_running, "max_running", 0, MAX_RUNNING_LIMIT)
    if rate is not None and (
        isinstance(rate, bool)
        or not isinstance(rate, (int, float))
        or not (rate == 0 or MIN_RATE <= rate <= MAX_RATE)
    ):
        raise InvalidArgument(
            f"rate must be 0 (no limit) or a number between {MIN_RATE:g} "
            f"and {MAX_RATE} (jobs per second)"
        )
    if burst is not None:
        check_int(burst, "burst", 1, MAX_BURST)
    return (
        "" if max_running is None else str(max_running),
        "" if rate is None else repr(float(rate)),
        "" if burst is None else str(burst),
    )


class GroupOps:
    """The group operations without I/O; mixed into `relayq.queue.QueueOps`."""

    name: str
    keys: QueueKeys

    def _group_limits_call(self, group: str, max_running: Any, rate: Any, burst: Any) -> Call[None]:
        args = check_group_limits(max_running, rate, burst)
        return Call(
            GROUP_LIMITS,
            (self.keys.meta,),
            (self.keys.prefix, self.name, check_group(group), *args),
            _ok,
        )

    def _set_group_limits(self, group: str, max_running: Any, rate: Any, burst: Any) -> Op[None]:
        if max_running is None and rate is None and burst is None:
            raise InvalidArgument(
                "give max_running, rate or burst (clear_group_limits removes them)"
            )
        yield Scripts((self._group_limits_call(group, max_running, rate, burst),))

    def _clear_group_limits(self, group: str) -> Op[None]:
        yield Scripts((self._group_limits_call(group, None, None, None),))

    def _groups(self, limit: int, cursor: str | None) -> Op[GroupsPage]:
        check_int(limit, "limit", 1, MAX_GROUPS_PAGE)
        if cursor is not None and not is_digits(cursor, MAX_CURSOR_DIGITS):
            raise InvalidArgument("cursor must be the next_cursor of an earlier page")
        call = Call(
            GROUPS,
            (self.keys.meta,),
            (self.keys.prefix, self.name, str(limit), cursor or "0"),
            _parse_page,
        )
        return (yield Scripts((call,)))[0]  # type: ignore[no-any-return]


class GroupOperations:
    """The sync face of GroupOps (relayq.Queue)."""

    if TYPE_CHECKING:

        def _drive(self, op: Op[Any]) -> Any: ...
        def _set_group_limits(
            self, group: str, max_running: Any, rate: Any, burst: Any
        ) -> Op[None]: ...
        def _clear_group_limits(self, group: str) -> Op[None]: ...
        def _groups(self, limit: int, cursor: str | None) -> Op[GroupsPage]: ...

    def set_group_limits(
        self,
        group: str,
        *,
        max_running: int | None = None,
        rate: float | None = None,
        burst: int | None = None,
    ) -> None:
        """Gives `group` limits of its own, overriding the queue's group_* defaults: at most
        `max_running` of its jobs running at once (0: no limit), at most `rate` jobs per second
        in bursts of `burst` (a rate needs a burst: its own or the queue's group_burst). The
        limits not given take the queue's defaults."""
        self._drive(self._set_group_limits(group, max_running, rate, burst))

    def clear_group_limits(self, group: str) -> None:
        """Removes `group`'s own limits: it takes the queue's defaults again."""
        self._drive(self._clear_group_limits(group))

    def groups(self, limit: int = DEFAULT_PAGE, cursor: str | None = None) -> GroupsPage:
        """A page of the queue's groups, the largest backlog first (the cursor of the next page
        in `next_cursor`, None at the end)."""
        return self._drive(self._groups(limit, cursor))  # type: ignore[no-any-return]
