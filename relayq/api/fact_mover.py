"""The workflow fact mover of relayq-server (docs/workflows.md): a thread of the server's main
process that, every WORKFLOW_MOVE_INTERVAL_MS, applies the facts of every queue's outbox (a
parent that ended, for children in other queues, other Cluster slots) in the children's
queues, and redoes the links an enqueue left unfinished, so that graphs move on while a server
runs, whichever queues have workers. Workers do the same for their own queues
(relayq.worker.maintenance); every apply is idempotent, so however many of them run, each fact
counts once. A round costs one read of the queue list and one pipelined EXISTS per queue."""

from __future__ import annotations

from ..connection import RedisClient, redis_errors
from ..keys import prefix
from ..limits import WORKFLOW_MOVE_INTERVAL_MS
from ..queue import Queue, list_queues
from ..worker.periodic import Periodic


class FactMover(Periodic):
    def __init__(
        self, redis: RedisClient, interval_s: float = WORKFLOW_MOVE_INTERVAL_MS / 1000
    ) -> None:
        super().__init__("workflows", interval_s, back_off=True)
        self.redis = redis

    def tick(self) -> None:
        names = list_queues(self.redis)
        if not names:
            return
        with redis_errors():
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.exists(prefix(name) + "outbox", prefix(name) + "linking")
            busy = [name for name, found in zip(names, pipe.execute()) if found]
        for name in busy:
            Queue(name, self.redis).move_workflow_facts()
