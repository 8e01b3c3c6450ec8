"""Live events for the SSE stream (`GET /api/events`): one Redis subscriber per server process,
fanned out to every connected client.

The hub's thread (started with the first client) holds one Pub/Sub connection subscribed to the
pattern ``relayq:{*}:events``, where every transition script publishes
``{"queue", "state", "ids": [<local ids>]}`` (lua/lib/events.lua). It turns local ids into public
job ids and puts a ``job`` event on each client's bounded inbox; about once a second, while
clients are connected, it reads every queue's stats once (known queues and those clients
filter on) and puts one ``stats`` event on each.
A client too slow to keep up (inbox full) is dropped: its stream ends and the browser
reconnects. `close()` (the server is stopping) ends every stream the same way. At most
`max_clients` streams are open at once (ServerBusy beyond).
"""

from __future__ import annotations

import json
import logging
import queue as queue_module
import threading
import time
from collections.abc import Callable
from typing import Any

from ..backoff import Backoff
from ..connection import RedisClient, redis_errors
from ..errors import RelayqError, ServerBusy
from ..job import make_job_id
from ..logs import log_event

log = logging.getLogger("relayq.server")
CHANNEL_PATTERN = "relayq:{*}:events"
INBOX_SIZE = 1000
END = ("end", None)  # the last item of an inbox: the stream ends


class Subscription:
    """One client's inbox of (event name, data) pairs, optionally for one queue only."""

    def __init__(self, queue: str | None) -> None:
        self.queue = queue
        self.inbox: queue_module.Queue[tuple[str, Any]] = queue_module.Queue(INBOX_SIZE + 1)
        self.ended = False

    def offer(self, event: str, data: Any) -> None:
        if self.ended:
            return
        if self.inbox.qsize() >= INBOX_SIZE:
            self.end()
        else:
            self.inbox.put((event, data))

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self.inbox.put(END)

    def next(self, timeout_s: float) -> tuple[str, Any] | None:
        """The next event, or None when nothing came within `timeout_s`."""
        try:
            return self.inbox.get(timeout=timeout_s)
        except queue_module.Empty:
            return None


class EventHub:
    def __init__(self, redis: RedisClient, read_stats: Callable[[set[str]], list[dict[str, Any]]],
                 max_clients: int, stats_every_s: float = 1.0) -> None:
        self.redis = redis
        self.read_stats = read_stats
        self.max_clients = max_clients
        self.stats_every_s = stats_every_s
        self._clients: set[Subscription] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def clients(self) -> int:
        return len(self._clients)

    def subscribe(self, queue: str | None = None) -> Subscription:
        """A new client's subscription (`unsubscribe` it when done). ServerBusy when full."""
        sub = Subscription(queue)
        with self._lock:
            if len(self._clients) >= self.max_clients:
                raise ServerBusy(f"{self.max_clients} event streams are already open")
            self._clients.add(sub)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="relayq-events",
                                                daemon=True)
                self._thread.start()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._clients.discard(sub)

    def close(self) -> None:
        """Ends every open stream (the server is stopping); new ones are refused."""
        with self._lock:
            self.max_clients = 0
            clients = list(self._clients)
        for sub in clients:
            sub.end()

    def _broadcast(self, event: str, data: Any, queue: str | None = None) -> None:
        with self._lock:
            clients = list(self._clients)
        for sub in clients:
            if queue is None or sub.queue is None or sub.queue == queue:
                sub.offer(event, data)

    def stats_event(self, queue: str | None) -> dict[str, Any]:
        """The data of a `stats` event now: every queue's stats (or only `queue`'s)."""
        return _stats_for(self.read_stats({queue} if queue else set()), queue)

    def _run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                self._listen(backoff)
            except RelayqError as e:
                log_event(log, logging.WARNING, "redis.unavailable", part="event_hub",
                          error=str(e))
            except Exception:  # a bug: keep the streams alive, say so
                log.exception("event hub failed; restarting")
            time.sleep(backoff.next_delay())

    def _listen(self, backoff: Backoff) -> None:
        with redis_errors():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            pubsub.psubscribe(CHANNEL_PATTERN)
        backoff.reset()
        try:
            next_stats = time.monotonic()
            while True:
                with redis_errors():
                    message = pubsub.get_message(
                        timeout=max(0.0, next_stats - time.monotonic()))
                if message is not None:
                    self._job_event(message["data"])
                if time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + self.stats_every_s
                    if self._clients:
                        self._broadcast_stats()
        finally:
            pubsub.close()

    def _job_event(self, text: str) -> None:
        try:
            event = json.loads(text)
            queue, state, ids = event["queue"], event["state"], event["ids"]
            public = [make_job_id(queue, str(local)) for local in ids]
        except (ValueError, KeyError, TypeError):
            log_event(log, logging.WARNING, "events.bad_message", message=str(text)[:200])
            return
        self._broadcast("job", {"queue": queue, "state": state, "ids": public}, queue)

    def _broadcast_stats(self) -> None:
        with self._lock:
            clients = list(self._clients)
        stats = self.read_stats({sub.queue for sub in clients if sub.queue})
        for sub in clients:
            sub.offer("stats", _stats_for(stats, sub.queue))


def _stats_for(stats: list[dict[str, Any]], queue: str | None) -> dict[str, Any]:
    return {"queues": [s for s in stats if queue is None or s["queue"] == queue]}
