"""`measure_http`: the HTTP throughput measurement runs its three phases to the end."""

from __future__ import annotations

from relayq.tools.http_bench import measure_http


def test_measure_http_reports_every_phase(server, admin_key: str) -> None:
    result = measure_http(server.url, admin_key, 150)
    assert result["jobs"] == 150
    for name in ("enqueue_single_per_s", "enqueue_batch_per_s", "claim_ack_per_s",
                 "enqueue_single_p50_ms", "enqueue_single_p99_ms"):
        assert result[name] > 0, name
    assert result["enqueue_single_p50_ms"] <= result["enqueue_single_p99_ms"]
