"""The schedule firer of relayq-server: a thread of the server's main process that fires the
due ticks of the periodic schedules of every queue that has had one (relayq:scheduled_queues)
every SCHEDULE_FIRE_INTERVAL_MS, so that schedules fire while a server runs, worker or not.
Workers fire those of their own queues too (relayq.worker.maintenance); the firing script is a
compare-and-set, so however many of them run, each tick becomes one job (docs/periodic.md).
A round reads what is due in all those queues in one round trip; a queue that never had a
schedule costs nothing."""

from __future__ import annotations

import logging

from ..connection import RedisClient
from ..limits import SCHEDULE_FIRE_INTERVAL_MS
from ..logs import log_event
from ..queue import fire_schedules_many, list_scheduled_queues
from ..worker.periodic import Periodic

log = logging.getLogger("relayq.server")


class ScheduleFirer(Periodic):
    def __init__(self, redis: RedisClient,
                 interval_s: float = SCHEDULE_FIRE_INTERVAL_MS / 1000) -> None:
        super().__init__("schedules", interval_s, back_off=True)
        self.redis = redis

    def tick(self) -> None:
        from ..metrics import record_schedules  # here: after the metrics directory is set

        names = list_scheduled_queues(self.redis)
        for name, report in fire_schedules_many(self.redis, names).items():
            if report.missed:
                log_event(log, logging.WARNING, "schedules.misfired", queue=name,
                          missed=report.missed)
            record_schedules(name, report.fired, report.missed)
