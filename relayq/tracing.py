"""OpenTelemetry tracing (`pip install relayq[otel]`): the only module that imports it.

The W3C trace context travels with the job. An enqueue (`Queue.enqueue`, `enqueue_many`, the
HTTP enqueue routes, which take the `traceparent` header the SDK `Client` sends) opens a
PRODUCER span `enqueue <queue>` under the caller's current span and stores that span's
`traceparent` in the job (field `trace`, job hash field `tp`). A claim that hands out jobs is
a span `claim <queue>` linked to each job's context; each run of a handler is a CONSUMER span
`run <type>` whose parent is the job's enqueue span, so a trace shows the request, the enqueue
and every attempt. Attributes: `relayq.queue`, `relayq.type`, `relayq.attempt`,
`relayq.outcome` (succeeded | failed), `messaging.system`, `messaging.destination.name`,
`messaging.message.id`.

Off and free unless used: without opentelemetry installed every function here is a constant
check; with it installed but no tracer provider set (the application's, or
`opentelemetry-instrument`'s), the same. A malformed `traceparent` is ignored (the job simply
has no trace). A server without tracing still passes a valid incoming `traceparent` on to the
job, so that a traced producer and a traced worker meet in one trace.

`configure_test_exporter` is a test-only hook (tests/api/test_tracing.py): with
$RELAYQ_OTEL_SPANS_FILE set, relayq-server and relayq-worker processes write their spans to that
file, one JSON object per line. Real deployments configure OpenTelemetry themselves.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the extra is not installed: tracing is off
    otel_trace = None  # type: ignore[assignment]

INSTALLED = otel_trace is not None
SPANS_FILE_ENV = "RELAYQ_OTEL_SPANS_FILE"
_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
_OFF: AbstractContextManager[Any] = nullcontext()
_NO_TRACE: AbstractContextManager[str] = nullcontext("")
# A valid traceparent received by a server that does not trace itself: passed on to the job.
_incoming: ContextVar[str] = ContextVar("relayq_incoming_traceparent", default="")
_propagator = TraceContextTextMapPropagator() if INSTALLED else None


_on = False  # a tracer provider, once set, stays (OpenTelemetry sets it once per process)
if INSTALLED and os.environ.get("OTEL_PYTHON_TRACER_PROVIDER"):
    otel_trace.get_tracer_provider()  # loads the provider that variable names, as it would


def active() -> bool:
    """True when spans go somewhere: OpenTelemetry is installed and a tracer provider is set.
    Called on every enqueue, claim and run, so it reads the API's global directly: the public
    get_tracer_provider() costs about a microsecond (an os.environ lookup) each time, paid by
    every user who does not trace; the getter is the fallback should that global move."""
    global _on
    if _on or not INSTALLED:
        return _on
    provider = getattr(otel_trace, "_TRACER_PROVIDER", otel_trace)
    if provider is otel_trace:
        provider = otel_trace.get_tracer_provider()
    _on = provider is not None and not isinstance(
        provider, (otel_trace.ProxyTracerProvider, otel_trace.NoOpTracerProvider))
    return _on


def valid_traceparent(text: str | None) -> str:
    """`text` if it is a W3C traceparent of version 00, else ''."""
    return text if text and len(text) == 55 and _TRACEPARENT.fullmatch(text) else ""


def _tracer() -> Any:
    return otel_trace.get_tracer("relayq")


def _attributes(queue: str, job_type: str | None = None) -> dict[str, Any]:
    attributes: dict[str, Any] = {"messaging.system": "relayq",
                                  "messaging.destination.name": queue, "relayq.queue": queue}
    if job_type:
        attributes["relayq.type"] = job_type
    return attributes


def _traceparent_of(span: Any) -> str:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, otel_trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


# -- producing ----------------------------------------------------------------------------------

def enqueue_span(queue: str, job_type: str | None, count: int) -> AbstractContextManager[Any]:
    """Around an enqueue: yields the traceparent to store in its jobs ('' for none)."""
    if active():
        return _enqueue_span(queue, job_type, count)
    incoming = _incoming.get()
    return nullcontext(incoming) if incoming else _NO_TRACE


@contextmanager
def _enqueue_span(queue: str, job_type: str | None, count: int) -> Iterator[str]:
    attributes = _attributes(queue, job_type)
    if count != 1:
        attributes["messaging.batch.message_count"] = count
    with _tracer().start_as_current_span(f"enqueue {queue}", kind=otel_trace.SpanKind.PRODUCER,
                                         attributes=attributes) as span:
        yield _traceparent_of(span)


def incoming(headers: Mapping[str, str]) -> AbstractContextManager[Any]:
    """Around a server's enqueue: the caller's trace context from its `traceparent` (and
    `tracestate`) header becomes the parent of the enqueue span. Malformed: ignored."""
    traceparent = valid_traceparent(headers.get("traceparent"))
    if not traceparent:
        return _OFF
    if active():
        if otel_trace.get_current_span().get_span_context().is_valid:
            return _OFF  # an instrumented server (e.g. Flask's) made the request's span already
        return _attached({"traceparent": traceparent,
                          "tracestate": headers.get("tracestate") or ""})
    return _passed_on(traceparent)


@contextmanager
def _attached(carrier: dict[str, str]) -> Iterator[None]:
    token = otel_context.attach(_propagator.extract(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def _passed_on(traceparent: str) -> Iterator[None]:
    token = _incoming.set(traceparent)
    try:
        yield
    finally:
        _incoming.reset(token)


def outgoing_headers() -> dict[str, str]:
    """The trace context headers of the caller's current span, for an HTTP enqueue."""
    if not active():
        return {}
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


# -- consuming ----------------------------------------------------------------------------------

def clock() -> int:
    """Now in ns when tracing (a claim's span starts before its round trip), else 0."""
    return time.time_ns() if active() else 0


def _context_of(traceparent: str | None) -> Any:
    traceparent = valid_traceparent(traceparent)
    return _propagator.extract({"traceparent": traceparent}) if traceparent else None


def claimed(queue: str, jobs: Sequence[Any], started_ns: int) -> None:
    """Records the span of a claim that handed out `jobs` (begun at `started_ns`), linked to
    each job's enqueue. Empty claims make no span: an idle worker adds nothing to traces."""
    if not jobs:
        return
    links = []
    for job in jobs:
        context = _context_of(job.trace)
        if context is not None:
            links.append(otel_trace.Link(otel_trace.get_current_span(context).get_span_context()))
    attributes = _attributes(queue)
    attributes["messaging.batch.message_count"] = len(jobs)
    span = _tracer().start_span(f"claim {queue}", kind=otel_trace.SpanKind.CONSUMER,
                                attributes=attributes, links=links, start_time=started_ns)
    span.end()


def run_span(job: Any) -> AbstractContextManager[Any]:
    """Around a handler's run: yields the span (None when not tracing) for `set_outcome`."""
    if not active():
        return _OFF
    return _run_span(job)


@contextmanager
def _run_span(job: Any) -> Iterator[Any]:
    attributes = _attributes(job.queue, job.type)
    attributes["relayq.attempt"] = job.attempts
    attributes["messaging.message.id"] = job.id
    with _tracer().start_as_current_span(
            f"run {job.type or job.queue}", context=_context_of(job.trace),
            kind=otel_trace.SpanKind.CONSUMER, attributes=attributes,
            record_exception=False, set_status_on_exception=False) as span:
        yield span


def set_outcome(span: Any, succeeded: bool, error: str = "") -> None:
    if span is None:
        return
    span.set_attribute("relayq.outcome", "succeeded" if succeeded else "failed")
    if not succeeded:
        lines = error.strip().splitlines()
        span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR,
                                          lines[-1][:200] if lines else ""))


# -- the test-only hook -------------------------------------------------------------------------

def configure_test_exporter(service: str) -> None:
    """Test-only: with $RELAYQ_OTEL_SPANS_FILE set (and the SDK installed), this process's spans
    go to that file, one JSON object per line. Does nothing otherwise."""
    path = os.environ.get(SPANS_FILE_ENV)
    if not path or not INSTALLED:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(
        out=out, formatter=lambda span: span.to_json(indent=None) + "\n")))
    otel_trace.set_tracer_provider(provider)
