"""The seam between the worker and its queues (relayq.worker.source), over HTTP against the real
server: `HttpQueue` answers as `relayq.Queue` does (statuses in order, batches over the routes'
bounds split), and `ClaimListener` brings claimed jobs, at most MAX_HTTP_CLAIM_COUNT."""

from __future__ import annotations

from typing import Any

import relayq
from relayq.limits import MAX_HTTP_CLAIM_COUNT, MAX_HTTP_OUTCOMES
from relayq.results import Outcome
from relayq.worker.source import ClaimListener, HttpQueue, TokenListener, listener_for


def test_settle_and_heartbeat_split_what_one_request_cannot_carry(
        q: relayq.Queue[Any], client: relayq.Client) -> None:
    many = MAX_HTTP_OUTCOMES + 5
    q.enqueue_many(range(many + 1))
    held = list(q.claim(1000)) + list(q.claim(many - 1000))
    http = HttpQueue(q.name, client, visibility_ms=30_000, worker_id="seam-test")
    replies = http.heartbeat_many([(j.id, j.lease) for j in held[:-1]] + [(held[-1].id, "x")],
                                  60_000)
    assert [beat.status for beat in replies] == ["ok"] * (many - 1) + ["lease_lost"]
    outcomes = [Outcome(j.id, j.lease or "", "ack", result_json=f'{{"n":{i}}}')
                for i, j in enumerate(held)]
    statuses, claimed = http.settle(outcomes, 1, visibility_ms=5000, worker_id="seam-test")
    assert statuses == ["ok"] * many
    assert claimed is not None and [j.payload for j in claimed] == [many]
    assert claimed[0].worker_id == "seam-test" and q.get(held[7].id).result == {"n": 7}
    assert http.settle([]) == ([], None)


def test_an_idle_http_waker_claims_at_most_the_routes_bound(q: relayq.Queue[Any],
                                                            client: relayq.Client) -> None:
    q.enqueue_many(range(MAX_HTTP_CLAIM_COUNT + 1))
    http = HttpQueue(q.name, client, visibility_ms=30_000, worker_id="seam-test")
    listener = listener_for(http, 30_000, "seam-test")
    assert isinstance(listener, ClaimListener) and not listener.interruptible
    got = listener.wait(0.5, 1000)
    assert len(got) == MAX_HTTP_CLAIM_COUNT and all(j.lease for j in got)
    assert len(listener.wait(0.5, 5)) == 1
    assert not listener.wait(0.05, 5) and http.promote() == (0, None)
    assert isinstance(listener_for(q, 30_000, "seam-test"), TokenListener)
