"""Group commit: the requests of one server process share Redis round trips.

A request thread hands its Redis work (a script call, or an API key lookup) to a `Batcher` and
waits for its own answer. When no round trip of that batcher is in flight, the thread leads one
at once, with its own work and whatever else is waiting: nothing lingers for company, so an
idle server answers as it did without batching. While a round trip is in flight, arriving work
waits for it to end (that is the only wait: at most one round trip and its batch), and the next
round takes all of it together: one pipeline instead of one round trip per request. The thread
that led hands the lead to the first waiter before it returns, so no request runs rounds for
others after its own answer is ready.

Each request still gets its own result or its own error:
- script calls go out in one pipeline (relayq.scripts.run_pipelined, so NOSCRIPT and MOVED are
  handled as for any pipeline), and each reply is parsed by its own call's parser;
- the enqueues of one queue become one enqueue call of all their jobs, and its acks one ack
  call (relayq.protocol.merge_calls): Redis runs the script's fixed part (clock, settings,
  counters, wake-up, event) once for the lot. Both are all or nothing on validation, so when a
  merged call is refused (it wrote nothing) each call runs again alone for its own answer;
- a round whose pipeline fails as a whole (Redis went away, OOM...) runs each call again alone,
  so each request sees the error (or the result) of its own call;
- key lookups of a round are one HMGET of the distinct key ids asked for. A lookup is sent after
  its request arrived, so a key revoked before the request was sent is refused (docs/
  guarantees.md: "a revoked key is refused by the next request").

Calls with a replicated-write WAIT are not batched (the queue runs them itself).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from .. import protocol, scripts, wire
from ..connection import RedisClient, follow_primary, is_cluster, redis_errors
from ..keys import API_KEYS
from ..limits import BATCH_LIMIT
from ..queue import Queue
from ..replication import Wait

Item = TypeVar("Item")
Out = TypeVar("Out")

MAX_BATCH = 256  # calls per round trip: a round stays around a millisecond of Redis time


class _Slot(Generic[Item, Out]):
    __slots__ = ("item", "result", "error", "done", "lead")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Out | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.lead = False


class Batcher(Generic[Item, Out]):
    """Runs `flush(items)` for whatever work is waiting, one round at a time, led by the
    requests themselves. `flush` answers one result or exception per item, in order."""

    def __init__(self, flush: Callable[[list[Item]], list[Any]], max_batch: int = MAX_BATCH
                 ) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[_Slot[Item, Out]] = []
        self._leading = False
        self.rounds = 0  # round trips led so far, and the items they carried (for tests)
        self.items = 0

    def submit(self, item: Item) -> Out:
        """The result of `item`'s work, or its exception raised."""
        slot: _Slot[Item, Out] = _Slot(item)
        with self._lock:
            self._waiting.append(slot)
            lead = not self._leading
            self._leading = True
        if not lead:
            slot.done.wait()
        if slot.lead or lead:
            self._round()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _round(self) -> None:
        with self._lock:
            batch = self._waiting[:self._max_batch]
            del self._waiting[:self._max_batch]
        try:
            outcomes = self._flush([s.item for s in batch])
        except BaseException as e:  # a bug in flush: every request of the round sees it
            outcomes = [e] * len(batch)
        finally:
            with self._lock:
                self.rounds += 1
                self.items += len(batch)
                if self._waiting:
                    heir = self._waiting[0]
                    heir.lead = True
                    heir.done.set()
                else:
                    self._leading = False
        for slot, outcome in zip(batch, outcomes):
            if isinstance(outcome, BaseException):
                slot.error = outcome
            else:
                slot.result = outcome
            slot.lead = False
            slot.done.set()


def _each(call: protocol.Call[Any], reply: Any) -> Any:
    """A call's parsed reply, or the exception its reply stands for."""
    if isinstance(reply, BaseException):
        return reply
    try:
        return call.parse(reply)
    except Exception as e:  # a refusal: this request's own error
        return e


class GroupCommit:
    """The batchers of one server process: script calls and API key lookups."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self.calls: Batcher[protocol.Call[Any], Any] = Batcher(self._run_calls)
        self.keys: Batcher[str, str | None] = Batcher(self._lookup_keys)

    def run(self, call: protocol.Call[Any]) -> Any:
        """One script call, sharing its round trip with those of other requests."""
        return self.calls.submit(call)

    def lookup_key(self, key_id: str) -> str | None:
        """The stored record of an API key (its JSON text), None when there is none."""
        return self.keys.submit(key_id)

    def _lookup_keys(self, key_ids: list[str]) -> list[Any]:
        distinct = list(dict.fromkeys(key_ids))
        try:
            with redis_errors():
                if is_cluster(self.redis):
                    values = self.redis.hmget(API_KEYS, distinct)
                else:  # on the thread's kept connection, as scripts run (relayq.wire)
                    follow_primary(self.redis)
                    values = wire.call(self.redis, "HMGET", API_KEYS, *distinct)
        except Exception as e:
            return [e] * len(key_ids)
        return spread(key_ids, distinct, values)

    def _run_calls(self, calls: list[protocol.Call[Any]]) -> list[Any]:
        if len(calls) == 1:
            return [self._alone(calls[0])]
        groups, sent = plan(calls)
        try:
            replies = scripts.run_pipelined(self.redis, sent)
        except Exception:  # the round failed as a whole: each call alone, with its own error
            return [self._alone(call) for call in calls]
        outcomes, again = resolve(calls, groups, sent, replies)
        for i in again:
            outcomes[i] = self._alone(calls[i])
        return outcomes

    def _alone(self, call: protocol.Call[Any]) -> Any:
        try:
            return protocol.run(self.redis, call)
        except Exception as e:
            return e


def spread(key_ids: list[str], distinct: list[str], values: list[Any]) -> list[Any]:
    """The value of each of `key_ids`, from those of its `distinct` ids."""
    found = dict(zip(distinct, values))
    return [found[k] for k in key_ids]


def plan(calls: list[protocol.Call[Any]]
         ) -> tuple[list[list[int]], list[protocol.Call[Any]]]:
    """The calls of a round as sent: groups of mergeable calls (indexes into `calls`), and one
    call per group (their merge, or the call alone)."""
    groups = protocol.group_mergeable(calls, BATCH_LIMIT)
    sent = [protocol.merge_calls([calls[i] for i in g]) if len(g) > 1 else calls[g[0]]
            for g in groups]
    return groups, sent


def resolve(calls: list[protocol.Call[Any]], groups: list[list[int]],
            sent: list[protocol.Call[Any]], replies: list[Any]) -> tuple[list[Any], list[int]]:
    """Each call's outcome (a result or an exception) from the replies to `sent`, and the
    indexes of the calls to run again alone: those of a merged call refused whole (it wrote
    nothing), so that each gets its own answer."""
    outcomes: list[Any] = [None] * len(calls)
    again: list[int] = []
    for group, call, reply in zip(groups, sent, replies):
        parsed = _each(call, reply)
        if len(group) == 1:
            outcomes[group[0]] = parsed
        elif isinstance(parsed, BaseException):
            again.extend(group)
        else:
            for i, results in zip(group, protocol.split_merged([calls[i] for i in group],
                                                               parsed)):
                outcomes[i] = results
    return outcomes, again


class GroupedQueue(Queue[Any]):
    """A server's Queue: its script calls without a WAIT share round trips (`commit`)."""

    def __init__(self, name: str, commit: GroupCommit, **options: Any) -> None:
        super().__init__(name, commit.redis, **options)
        self._commit = commit

    def _run(self, call: protocol.Call[Any]) -> Any:
        return self._commit.run(call)

    def _run_many(self, calls: Sequence[protocol.Call[Any]], wait: Wait | None = None
                  ) -> list[Any]:
        if wait is None and len(calls) == 1:
            return [self._commit.run(calls[0])]
        return super()._run_many(calls, wait)
