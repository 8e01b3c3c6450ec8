"""The workflow fact mover (docs/workflows.md): a loop that applies the facts in queues'
outboxes (a parent that ended, for children in other queues, other Cluster slots) in the
children's queues, and redoes the links an enqueue left unfinished.

Every worker runs one for its own queues, and relayq-server one for every queue (so that graphs
move on whichever queues have workers). A round runs every WORKFLOW_MOVE_INTERVAL_MS, and at
once when nudged: a worker nudges its mover when it settled a job that has children, so a
cross-queue hop takes a round trip or two instead of waiting for the next round. Every apply is
idempotent, so however many movers run, each fact counts once. A round costs one pipelined
EXISTS per queue (plus, on the server, one read of the queue list)."""

from __future__ import annotations

from collections.abc import Callable

from ..connection import RedisClient, redis_errors
from ..keys import prefix
from ..limits import WORKFLOW_MOVE_INTERVAL_MS
from ..queue import Queue
from .periodic import Periodic


class FactMover(Periodic):
    """Moves the facts of the queues `names()` gives, each round."""

    def __init__(self, redis: RedisClient, names: Callable[[], list[str]],
                 interval_s: float = WORKFLOW_MOVE_INTERVAL_MS / 1000) -> None:
        super().__init__("workflows", interval_s, back_off=True)
        self.redis = redis
        self.names = names

    def tick(self) -> None:
        names = self.names()
        if not names:
            return
        with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.exists(prefix(name) + "outbox", prefix(name) + "linking")
            busy = [name for name, found in zip(names, pipe.execute()) if found]
        for name in busy:
            Queue(name, self.redis).move_workflow_facts()
