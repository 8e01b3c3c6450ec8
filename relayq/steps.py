"""Operations without I/O, and the two loops that run them.

An operation (a method of `relayq.queue.QueueOps` or `relayq.client.ClientOps`) is a generator:
it yields each step it needs done (a script call, a read, an HTTP request, a `Sleep`), is sent
the step's reply or thrown its error, and returns its result. `drive` runs one with a blocking
`do(step)`, `drive_async` with an awaitable one: the rules live in the operation, once, and
the sync and asyncio classes only say how a step is done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, NamedTuple, TypeVar

R = TypeVar("R")


class Sleep(NamedTuple):
    """A step: wait this long (sent back None)."""

    seconds: float


def drive(op: Generator[Any, Any, R], do: Callable[[Any], Any]) -> R:
    """Runs `op`, doing each step with `do`; its result."""
    try:
        step = next(op)
        while True:
            try:
                reply = do(step)
            except Exception as e:  # noqa: BLE001 - the operation decides what it means
                step = op.throw(e)
            else:
                step = op.send(reply)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def drive_async(op: Generator[Any, Any, R], do: Callable[[Any], Awaitable[Any]]) -> R:
    """Runs `op`, awaiting each step with `do`; its result."""
    try:
        step = next(op)
        while True:
            try:
                reply = await do(step)
            except Exception as e:  # noqa: BLE001 - the operation decides what it means
                step = op.throw(e)
            else:
                step = op.send(reply)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
