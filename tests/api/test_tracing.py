"""OpenTelemetry across real processes: a traced producer (tests/support/tracing_producer.py,
the SDK's InMemorySpanExporter), a relayq-server and a relayq-worker, each of the last two
writing its spans to a file through the test-only hook of relayq/tracing.py
($RELAYQ_OTEL_SPANS_FILE). One trace holds the request, the enqueue, the claim and each run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import relayq
from relayq.tracing import SPANS_FILE_ENV
from tests.support.helpers import ROOT, wait_until
from tests.support.server import start_server


def spans_in(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def named(spans: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["name"] == name]


def test_one_trace_from_the_request_to_every_run(
        q: relayq.Queue[Any], redis_url: str, admin_key: str, tmp_path: Path) -> None:
    server_spans, worker_spans = tmp_path / "server.jsonl", tmp_path / "worker.jsonl"
    server = start_server(redis_url, env={SPANS_FILE_ENV: str(server_spans)})
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "relayq.worker.cli", "--queue", q.name, "--redis", redis_url,
         "--demo-fail-rate", "0"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, SPANS_FILE_ENV: str(worker_spans)})
    try:
        produced = json.loads(subprocess.run(
            [sys.executable, "-m", "tests.support.tracing_producer", server.url, admin_key,
             redis_url, q.name], cwd=ROOT, capture_output=True, text=True, check=True,
            timeout=60).stdout)
        over_http, direct = produced["http"], produced["direct"]
        wait_until(lambda: q.get(over_http).state == "succeeded" and q.get(direct).state == "dead",
                   timeout=20, message="both jobs finished")
        wait_until(lambda: len(named(spans_in(worker_spans), f"run {q.name}")) == 3,
                   message="three runs traced")
        # the malformed header: ignored, and the job still runs
        request = urllib.request.Request(
            f"{server.url}/api/queues/{q.name}/jobs", data=b'{"payload": {"n": 1}}',
            method="POST", headers={"Authorization": f"Bearer {admin_key}",
                                    "Content-Type": "application/json",
                                    "traceparent": "00-not-a-trace-context"})
        untraced = json.loads(urllib.request.urlopen(request, timeout=10).read())["id"]
        wait_until(lambda: q.get(untraced).state == "succeeded", message="its job ran")
    finally:
        worker.terminate()
        worker.wait(15)
        log.close()
        server.stop()

    request_span = named(produced["spans"], "request")[0]
    trace_id = request_span["context"]["trace_id"]
    # over HTTP: the server's enqueue span is a child of the producer's request span
    (http_enqueue,) = [s for s in named(spans_in(server_spans), f"enqueue {q.name}")
                       if s["context"]["trace_id"] == trace_id]
    assert http_enqueue["parent_id"] == request_span["context"]["span_id"]
    assert http_enqueue["kind"] == "SpanKind.PRODUCER"
    assert http_enqueue["attributes"]["relayq.queue"] == q.name
    # straight into Redis: the producer's own enqueue span
    (direct_enqueue,) = named(produced["spans"], f"enqueue {q.name}")
    assert direct_enqueue["parent_id"] == request_span["context"]["span_id"]
    # the job carries its enqueue span's context
    assert (q.get(over_http).trace or "").startswith(
        f"00-{trace_id[2:]}-{http_enqueue['context']['span_id'][2:]}-")
    # the malformed traceparent was ignored: the server's enqueue span began its own trace
    stray = (q.get(untraced).trace or "").split("-")
    (fresh,) = [s for s in spans_in(server_spans) if s["context"]["trace_id"] == f"0x{stray[1]}"]
    assert fresh["parent_id"] is None and stray[1] != trace_id[2:]

    runs = [r for r in named(spans_in(worker_spans), f"run {q.name}")
            if r["attributes"]["messaging.message.id"] != untraced]
    assert {r["context"]["trace_id"] for r in runs} == {trace_id}
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_parent.setdefault(run["parent_id"], []).append(run)
    (ok,) = by_parent[http_enqueue["context"]["span_id"]]
    assert ok["attributes"] == {**ok["attributes"], "relayq.queue": q.name,
                                "relayq.attempt": 1, "relayq.outcome": "succeeded",
                                "messaging.message.id": over_http}
    failed = sorted(by_parent[direct_enqueue["context"]["span_id"]],
                    key=lambda s: s["attributes"]["relayq.attempt"])
    assert [(f["attributes"]["relayq.attempt"], f["attributes"]["relayq.outcome"])
            for f in failed] == [(1, "failed"), (2, "failed")]
    assert failed[0]["status"]["status_code"] == "ERROR"
    # claims that handed out the traced jobs are linked to their enqueues
    linked = {link["context"]["span_id"] for claim in named(spans_in(worker_spans),
                                                             f"claim {q.name}")
              for link in claim["links"]}
    assert {http_enqueue["context"]["span_id"], direct_enqueue["context"]["span_id"]} <= linked
