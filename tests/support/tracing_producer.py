"""A traced producer process for tests/api/test_tracing.py: OpenTelemetry's SDK with its
InMemorySpanExporter, one root span `request`, and inside it a job enqueued over HTTP (the SDK
Client, which sends `traceparent`) and one straight into Redis (Queue.enqueue).

    python -m tests.support.tracing_producer SERVER API_KEY REDIS_URL QUEUE

Prints one JSON object: the ids of the two jobs and this process's finished spans (each as the
SDK's `to_json`)."""

from __future__ import annotations

import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import relayq


def main(server: str, api_key: str, redis_url: str, queue: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    with trace.get_tracer("producer").start_as_current_span("request"), \
            relayq.Client(server, api_key) as client:
        over_http = client.enqueue(queue, {"via": "http"}).id
        direct = relayq.Queue(queue, redis_url).enqueue({"fail": True}, max_attempts=2,
                                                         backoff_base_ms=0).id
    print(json.dumps({"http": over_http, "direct": direct,
                      "spans": [json.loads(s.to_json()) for s in exporter.get_finished_spans()]}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
