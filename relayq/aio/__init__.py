"""relayq for asyncio programs (FastAPI, aiohttp, ...): `Queue` on redis.asyncio and `Client`
on httpx, with the operations of `relayq.Queue` and `relayq.Client`. They run the very same
operations (relayq.queue.QueueOps, relayq.client.ClientOps): same checks, script calls,
replies and exceptions; only the I/O awaits. See docs/aio.md.

`import relayq` does not load this package; `relayq.aio.Client` needs httpx
(`pip install relayq[aio]`) and is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .connection import connect
from .queue import Queue

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Client", "Queue", "connect"]


def __getattr__(name: str) -> object:
    """`Client` on first use: it needs httpx (the `aio` extra), which `Queue` does not."""
    if name == "Client":
        from .client import Client

        return Client
    raise AttributeError(f"module 'relayq.aio' has no attribute {name!r}")
