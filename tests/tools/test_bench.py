"""`measure_http` and `measure_concurrent` (wrk): the HTTP measurements run every phase to the
end."""

from __future__ import annotations

import pytest

import relayq
from relayq.tools.http_bench import has_wrk, measure_concurrent, measure_http


def test_measure_http_reports_every_phase(server, admin_key: str) -> None:
    result = measure_http(server.url, admin_key, 150)
    assert result["jobs"] == 150
    for name in ("enqueue_single_per_s", "enqueue_batch_per_s", "claim_ack_per_s",
                 "enqueue_single_p50_ms", "enqueue_single_p99_ms"):
        assert result[name] > 0, name
    assert result["enqueue_single_p50_ms"] <= result["enqueue_single_p99_ms"]


@pytest.mark.skipif(not has_wrk(), reason="wrk is not installed")
def test_measure_concurrent_reports_every_phase_with_wrk(server, admin_key: str,
                                                         redis_url: str) -> None:
    r = relayq.connect(redis_url)
    result = measure_concurrent(server.url, admin_key, [2], 1, r)
    assert set(result) == {"c2_enqueue_single", "c2_enqueue_batch", "c2_drain"}
    for name, figures in result.items():
        assert figures["non_2xx"] == 0 and figures["socket_errors"] == 0, name
        assert figures["jobs_per_s"] > 0, name
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"], name
        assert figures["script_calls_per_job"] > 0, name
    # the drain acked jobs: each one an ack request, so fewer jobs than requests
    drained = result["c2_drain"]
    assert drained["jobs_per_s"] * drained["seconds"] < drained["requests"]
