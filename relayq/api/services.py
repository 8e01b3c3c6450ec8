"""What the views share for the life of a server process: its settings (`ServerConfig`), the
Redis client, the API key store (`api_keys`), the long-poll wake hub, the event hub and a
bounded cache of `Queue` objects. One `Services` per app, kept in `app.extensions["relayq"]`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flask import current_app

from ..auth import KeyStore
from ..connection import connect
from ..limits import DEFAULT_MAX_PAYLOAD_BYTES
from ..queue import Queue, list_queues, stats_many
from ..throttle import DEFAULT_BURST, DEFAULT_RATE, AuthThrottle
from .event_hub import EventHub
from .group_commit import GroupCommit, GroupedQueue
from .wake_hub import WakeHub

QUEUE_CACHE_SIZE = 1024
# JSON values in one request body (relayq.api.body): a batch of 1000 jobs with payloads of
# 100 values each fits; parsing the most costs some 50 MiB of Python objects.
DEFAULT_MAX_JSON_VALUES = 200_000


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server. `queues` are listed (GET /api/queues, events) even before
    their first use; `max_long_polls` and `max_event_streams` bound the requests that hold a
    server thread for long (see relayq.api.cli for how the thread pool is sized from them);
    `auth_failure_rate` and `auth_failure_burst` throttle failed authentications per client
    address (relayq.throttle); `behind_proxy` is the number of proxies in front whose
    X-Forwarded-For and X-Forwarded-Proto are trusted (0: none, the headers are ignored);
    `max_json_values` bounds what parsing a body may build (relayq.api.body)."""

    redis_url: str | None = None
    auth: bool = True
    queues: tuple[str, ...] = ()
    max_request_bytes: int = 16 * 1024 * 1024
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_json_values: int = DEFAULT_MAX_JSON_VALUES
    max_long_polls: int = 128
    max_event_streams: int = 32
    auth_failure_rate: float = DEFAULT_RATE
    auth_failure_burst: int = DEFAULT_BURST
    behind_proxy: int = 0


class Services:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.redis = connect(config.redis_url)
        self.commit = GroupCommit(self.redis)
        self.api_keys = KeyStore(self.redis, lookup=self.commit.lookup_key)
        self.auth_throttle = AuthThrottle(config.auth_failure_rate, config.auth_failure_burst)
        self.wake_hub = WakeHub(config.max_long_polls)
        self.event_hub = EventHub(self.redis, self.all_stats, config.max_event_streams)
        self.queue = lru_cache(maxsize=QUEUE_CACHE_SIZE)(self._make_queue)

    def close(self) -> None:
        """Ends long polls and event streams at once: the server is stopping."""
        self.wake_hub.close()
        self.event_hub.close()

    def _make_queue(self, name: str) -> Queue[Any]:
        """The `Queue` for `name` (InvalidQueueName for a bad name; nothing is cached then)."""
        return GroupedQueue(name, self.commit, max_payload_bytes=self.config.max_payload_bytes)

    def queue_names(self) -> list[str]:
        """Queues in use plus those named by --queues, sorted."""
        return sorted(set(list_queues(self.redis)) | set(self.config.queues))

    def all_stats(self, also: set[str] | frozenset[str] = frozenset()) -> list[dict[str, Any]]:
        """Stats of every queue (and of the queues in `also`, used or not), by name, read in
        one round trip (the event stream sends them all every second)."""
        names = sorted(set(self.queue_names()) | also)
        return [stats.to_dict() for stats in stats_many(self.redis, names)]


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.extensions["relayq"]
