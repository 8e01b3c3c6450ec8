"""`relayq.aio.Client`: the HTTP SDK for asyncio programs, on httpx (`pip install relayq[aio]`).

Every method runs the same operation of `relayq.client.ClientOps` as `relayq.Client`: same
paths and bodies, same replies, the same exception for each error reply (through
`relayq.errors.ERRORS`), and the same calls counted as safe to repeat. Only the I/O differs:
httpx sends the requests (one `httpx.AsyncClient`, keep-alive), and this module does the
retries that urllib3.Retry does for the sync client, with the same limits (`retries`,
RETRY_STATUSES, backoff from `backoff_s` doubling up to BACKOFF_MAX_S, Retry-After honoured):
a call whose connection failed before it was sent is tried again whatever it is; one that may
have reached the server (a read error, a 5xx) only when it is repeatable.

Why httpx: the asyncio HTTP client with a sync twin of the same API, HTTP/1.1 keep-alive pools,
strict timeouts per phase, maintained by the encode team behind Starlette (so FastAPI users
have it already); aiohttp would bring a server and its own event-loop rules with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ..backoff import Backoff
from ..client import (
    BACKOFF_MAX_S,
    CONNECT_TIMEOUT_S,
    RETRY_STATUSES,
    ClientOp,
    ClientOps,
    Request,
    unavailable,
)
from ..codec import dumps
from ..errors import ServerUnavailable
from ..event_stream import (
    MAX_RECONNECT_S,
    STREAM_READ_S,
    EventStreamParser,
    NextEvent,
    stream_headers,
    stream_path,
    until_finished_on_events,
)
from ..events import Event, check_event_id
from ..flows import FlowResult
from ..job import Job, parse_job_id
from ..keys import check_queue_name
from ..limits import DEFAULT_PAGE
from ..options import is_digits
from ..protocol import Heartbeat
from ..queue_groups import GroupsPage
from ..results import ClaimResult, EnqueueResult, NackResult, NewJob, Outcome, QueueStats
from ..steps import Sleep, drive_async
from ..worker_registry import WorkerEntry

R = TypeVar("R")
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _why(error: httpx.TransportError) -> str:
    """Why a server could not be reached, in a few words (as relayq.client's)."""
    if isinstance(error, httpx.ConnectTimeout):
        return "connect timed out"
    if isinstance(error, httpx.ReadTimeout):
        return "no reply in time"
    if isinstance(error, httpx.ConnectError):
        text = str(error).lower()
        if "name or service" in text or "nodename" in text or "resolution" in text:
            return "unknown host"
        return text.rsplit("] ", 1)[-1] or "cannot connect"
    if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return "connection broken"
    return type(error).__name__


class Client(ClientOps):
    """A client of one relayq server, for asyncio. Options as for `relayq.Client`; close it
    with `await client.aclose()` or use `async with`.

        async with relayq.aio.Client("http://localhost:8080", api_key="rq_...") as client:
            job = await client.enqueue("emails", {"to": "ada@example.com"})
            print((await client.wait(job.id)).result)
    """

    def __init__(self, server: str | None = None, api_key: str | None = None, *,
                 timeout: float = 30.0, retries: int = 3, backoff_s: float = 0.1,
                 pool_size: int = 10) -> None:
        super().__init__(server, api_key, timeout=timeout, retries=retries, backoff_s=backoff_s)
        self._http = httpx.AsyncClient(
            headers=self._headers(), follow_redirects=False,
            limits=httpx.Limits(max_connections=pool_size,
                                max_keepalive_connections=pool_size))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # -- plumbing: the asyncio I/O of the operations of ClientOps ---------------------------

    async def _drive(self, op: ClientOp[R]) -> R:
        """Runs an operation, each request sent with httpx (relayq/steps.py)."""
        return await drive_async(op, self._step)

    async def _step(self, step: Request | Sleep) -> Any:
        if type(step) is Sleep:
            await asyncio.sleep(step.seconds)
            return None
        return await self._call(step)

    async def _call(self, request: Request) -> tuple[int, Any, Any]:
        timeout = httpx.Timeout(self.timeout + request.extra_wait_s, connect=CONNECT_TIMEOUT_S)
        content = None if request.body is None else dumps(request.body)
        backoff = Backoff(self.backoff_s, BACKOFF_MAX_S)
        for tries_left in range(self.retries, -1, -1):
            try:
                response = await self._http.request(
                    request.method, self.server + request.path, params=request.fields,
                    content=content, headers=request.headers, timeout=timeout)
            except httpx.TransportError as e:
                if tries_left and (request.repeatable or isinstance(e, NOT_SENT)):
                    await asyncio.sleep(backoff.next_delay())
                    continue
                raise unavailable(self.server, _why(e)) from e
            if tries_left and request.repeatable and response.status_code in RETRY_STATUSES:
                after = response.headers.get("Retry-After")
                await asyncio.sleep(min(BACKOFF_MAX_S, int(after)) if is_digits(after)
                                    else backoff.next_delay())
                continue
            return self._reply(request.path, response.status_code, response.content,
                               response.headers)
        raise ServerUnavailable("unreachable")  # the loop always returns or raises

    # -- producing ------------------------------------------------------------------------

    async def enqueue(self, queue: str, payload: Any, **options: Any) -> EnqueueResult:
        """Adds one job (see relayq.Client.enqueue)."""
        return await self._drive(self._enqueue(queue, payload, options))

    async def flow(self, *parts: Any) -> list[FlowResult]:
        return await self._drive(self._flow(parts))

    async def enqueue_many(self, queue: str, jobs: Iterable[NewJob[Any] | Any]
                           ) -> list[EnqueueResult]:
        """Adds many jobs, in requests of up to 1000 (each all or nothing)."""
        return await self._drive(self._enqueue_many(queue, jobs))

    # -- reading --------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job[Any]:
        return await self._drive(self._get(job_id))

    async def wait(self, job_id: str, timeout: float = 30.0, *,
                   on_change: Callable[[Job[Any]], None] | None = None,
                   poll_s: float | None = None) -> Job[Any]:
        """The job once it is finished (see relayq.Client.wait): waits on its queue's event
        stream, not by polling. (`poll_s` is ignored, as by the sync twin.)"""
        queue, _ = parse_job_id(job_id)
        # The stream is opened before the job is read: whatever happens after the read is in it.
        stream = await _EventStream(self, queue, None).open()

        async def step(step: Any) -> Any:
            if type(step) is NextEvent:
                return await stream.next(step.seconds)
            return await self._step(step)
        try:
            return await drive_async(until_finished_on_events(
                lambda: self._get(job_id), job_id, timeout, on_change), step)
        finally:
            await stream.aclose()

    async def events(self, queue: str, since: str | None = None, *,
                     timeout: float | None = None) -> AsyncIterator[Event]:
        """The events of a queue's log, as relayq.Client.events gives them (resumed across a
        dropped connection with no gap and no repeat), for `async for`. "From now" (`since`
        None) is the first iteration, when the stream opens; it ends once no event came for
        `timeout` seconds (None: never)."""
        check_queue_name(queue)
        stream = await _EventStream(self, queue, None if since is None
                                    else check_event_id(since)).open()
        try:
            while (event := await stream.next(timeout)) is not None:
                yield event
        finally:
            await stream.aclose()

    async def stats(self, queue: str) -> QueueStats:
        return await self._drive(self._stats(queue))

    async def queues(self) -> list[QueueStats]:
        return await self._drive(self._queues())

    # -- working --------------------------------------------------------------------------

    async def claim(self, queue: str, count: int = 1, *, wait_ms: int = 0,
                    visibility_ms: int | None = None, worker_id: str | None = None
                    ) -> ClaimResult:
        return await self._drive(self._claim(queue, count, wait_ms, visibility_ms, worker_id))

    async def ack(self, job_id: str, lease: str, result: Any = None) -> str:
        return await self._drive(self._ack(job_id, lease, result))

    async def progress(self, job_id: str, lease: str, fraction: float, info: Any = None
                       ) -> bool:
        return await self._drive(self._progress(job_id, lease, fraction, info))

    async def nack(self, job_id: str, lease: str, error: str = "", *, retry: bool = True,
                   delay_ms: int | None = None) -> NackResult:
        return await self._drive(self._nack(job_id, lease, error, retry, delay_ms))

    async def heartbeat(self, job_id: str, lease: str, visibility_ms: int | None = None) -> int:
        return await self._drive(self._heartbeat(job_id, lease, visibility_ms))

    async def settle(self, queue: str, outcomes: Sequence[Outcome], claim: int = 0, *,
                     visibility_ms: int | None = None, worker_id: str | None = None
                     ) -> tuple[list[str], ClaimResult | None]:
        return await self._drive(self._settle(queue, outcomes, claim, visibility_ms,
                                              worker_id))

    async def heartbeat_many(self, queue: str, leases: Iterable[tuple[str, str]],
                             visibility_ms: int | None = None) -> list[Heartbeat]:
        return await self._drive(self._heartbeat_many(queue, leases, visibility_ms))

    async def reap(self, queue: str) -> tuple[int, int]:
        return await self._drive(self._reap(queue))

    # -- operating ------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> str:
        return await self._drive(self._cancel(job_id))

    async def pause(self, queue: str) -> None:
        await self._drive(self._pause(queue, True))

    async def resume(self, queue: str) -> None:
        await self._drive(self._pause(queue, False))

    async def set_rate_limit(self, queue: str, rate: float, burst: int | None = None) -> None:
        await self._drive(self._set_rate_limit(queue, rate, burst))

    async def clear_rate_limit(self, queue: str) -> None:
        await self._drive(self._clear_rate_limit(queue))

    async def settings(self, queue: str) -> dict[str, float]:
        return await self._drive(self._settings(queue))

    async def configure(self, queue: str, **settings: float) -> dict[str, float]:
        return await self._drive(self._configure(queue, settings))

    async def groups(self, queue: str, limit: int = DEFAULT_PAGE, cursor: str | None = None
                     ) -> GroupsPage:
        return await self._drive(self._groups(queue, limit, cursor))

    async def set_group_limits(self, queue: str, group: str, *, max_running: int | None = None,
                               rate: float | None = None, burst: int | None = None) -> None:
        await self._drive(self._group_limits(queue, group, {
            "max_running": max_running, "rate": rate, "burst": burst}))

    async def clear_group_limits(self, queue: str, group: str) -> None:
        await self._drive(self._group_limits(queue, group, None))

    async def jobs(self, queue: str, state: str, limit: int = DEFAULT_PAGE,
                   cursor: str | None = None, search: str | None = None
                   ) -> tuple[list[Job[Any]], str | None]:
        return await self._drive(self._jobs(queue, state, limit, cursor, search))

    async def workers(self) -> list[WorkerEntry]:
        return await self._drive(self._workers())

    async def register_worker(self, entry: WorkerEntry, ttl_ms: int) -> WorkerEntry:
        return await self._drive(self._register_worker(entry, ttl_ms))

    async def remove_worker(self, worker_id: str) -> None:
        await self._drive(self._remove_worker(worker_id))

    async def dead(self, queue: str, limit: int = DEFAULT_PAGE, cursor: str | None = None
                   ) -> tuple[list[Job[Any]], str | None]:
        return await self._drive(self._dead_page(queue, limit, cursor))

    async def requeue_dead_job(self, job_id: str) -> None:
        await self._drive(self._requeue_dead(parse_job_id(job_id)[0], job_id))

    async def requeue_all_dead(self, queue: str) -> int:
        return await self._drive(self._requeue_dead(queue, None))

    async def purge_dead_job(self, job_id: str) -> None:
        await self._drive(self._purge_dead(parse_job_id(job_id)[0], job_id))

    async def purge_all_dead(self, queue: str) -> int:
        return await self._drive(self._purge_dead(queue, None))

    # -- periodic schedules (docs/periodic.md); each is its JSON view -----------------------

    async def schedule(self, queue: str, schedule_id: str, payload: Any, **fields: Any
                       ) -> dict[str, Any]:
        return await self._drive(self._save_schedule(queue, schedule_id, payload, fields))

    async def schedules(self, queue: str) -> list[dict[str, Any]]:
        return await self._drive(self._schedules(queue))

    async def get_schedule(self, queue: str, schedule_id: str) -> dict[str, Any]:
        return await self._drive(self._get_schedule(queue, schedule_id))

    async def unschedule(self, queue: str, schedule_id: str) -> None:
        await self._drive(self._unschedule(queue, schedule_id))

    async def pause_schedule(self, queue: str, schedule_id: str) -> dict[str, Any]:
        return await self._drive(self._pause_schedule(queue, schedule_id, True))

    async def resume_schedule(self, queue: str, schedule_id: str) -> dict[str, Any]:
        return await self._drive(self._pause_schedule(queue, schedule_id, False))

    async def trigger_schedule(self, queue: str, schedule_id: str) -> str:
        return await self._drive(self._trigger_schedule(queue, schedule_id))

    # -- API keys -------------------------------------------------------------------------

    async def create_key(self, name: str, scopes: Iterable[str]) -> dict[str, Any]:
        return await self._drive(self._create_key(name, scopes))

    async def list_keys(self) -> list[dict[str, Any]]:
        return await self._drive(self._list_keys())

    async def revoke_key(self, key_id: str) -> None:
        await self._drive(self._revoke_key(key_id))




class _EventStream:
    """One queue's event stream, for asyncio: a task reads it (reconnecting by itself after the
    last event id seen, as relayq.Client's does) and queues its events; `next(timeout)` gives
    the next one, or None when none came within `timeout` seconds (None: wait for one). A
    refusal (e.g. 401) ends the task and is raised by `next`."""

    def __init__(self, client: Client, queue: str, since: str | None) -> None:
        self.client = client
        self.path = stream_path(queue)
        self.parser = EventStreamParser(since)
        self.events: asyncio.Queue[Event | Exception] = asyncio.Queue()
        self.response: httpx.Response | None = None
        self.reader: asyncio.Task[None] | None = None
        self.reconnects = Backoff(client.backoff_s, MAX_RECONNECT_S)

    async def open(self) -> _EventStream:
        await self._connect()  # at once: the stream's start is fixed from here on
        self.reader = asyncio.create_task(self._read())
        return self

    async def _connect(self) -> None:
        request = self.client._http.build_request(
            "GET", self.client.server + self.path,
            headers=stream_headers(self.parser.last_id),
            timeout=httpx.Timeout(STREAM_READ_S, connect=CONNECT_TIMEOUT_S))
        try:
            response = await self.client._http.send(request, stream=True)
        except httpx.TransportError as e:
            raise unavailable(self.client.server, _why(e)) from e
        if response.status_code != 200:
            data = await response.aread()
            await response.aclose()
            # an error reply raises its exception; any other status is not a stream either
            self.client._reply(self.path, response.status_code, data, response.headers)
            raise self.client._error(self.path, response.status_code, None)
        self.response = response
        self.parser.restart()
        self.reconnects.reset()

    async def _read(self) -> None:
        while True:
            try:
                if self.response is None:
                    await self._connect()
                assert self.response is not None
                async for chunk in self.response.aiter_raw():
                    for event in self.parser.feed(chunk):
                        self.events.put_nowait(event)
                raise httpx.RemoteProtocolError("stream ended")
            except (httpx.TransportError, ServerUnavailable):
                await self._drop()  # resume after the last event seen
                await asyncio.sleep(self.reconnects.next_delay())
            except Exception as e:  # noqa: BLE001 - a refusal: the reader of the stream raises it
                self.events.put_nowait(e)
                return

    async def next(self, timeout: float | None) -> Event | None:
        try:
            item = await asyncio.wait_for(self.events.get(), timeout)
        except TimeoutError:
            return None
        if isinstance(item, Exception):
            raise item
        return item

    async def _drop(self) -> None:
        if self.response is not None:
            response, self.response = self.response, None
            await response.aclose()

    async def aclose(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        await self._drop()
