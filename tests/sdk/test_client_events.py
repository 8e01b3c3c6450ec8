"""`Client.events` over a queue's event stream: every event once and in order across a dropped
connection (the server restarted on its port). `wait` on the stream, for both twins, is in
tests/aio/test_client.py."""

from __future__ import annotations

from relayq import Client, Queue
from relayq.tools.server_process import ServerProcess
from tests.support.server import ROOT


def test_events_resume_across_a_dropped_connection_without_gap_or_repeat(
        redis_url: str, q: Queue) -> None:
    server = ServerProcess(redis_url, "--auth", "off", "--workers", "1", cwd=ROOT).start()
    client = Client(server.url, retries=0)
    try:
        events = client.events(q.name, timeout=20)
        first = q.enqueue({"n": 0}).id
        assert next(events).job_ids == [first]
        server.kill()  # the connection drops
        missed = [q.enqueue({"n": n}).id for n in range(1, 4)]
        server.start()  # the same port: the stream reconnects after the last event it saw
        (job,) = q.claim()
        seen = [(e.type, e.job_ids) for e in (next(events) for _ in range(4))]
        assert seen == [("ready", [i]) for i in missed] + [("running", [job.id])]
        q.progress(job.id, job.lease or "", 0.75, {"rows": 3})
        progress = next(events)
        assert (progress.type, progress.progress, progress.progress_info) == (
            "progress", 0.75, {"rows": 3})
        since = client.events(q.name, since=progress.id, timeout=0.5)
        assert list(since) == []  # nothing after the last one
        events.close()
    finally:
        client.close()
        server.stop()
