"""Workflows over HTTP (docs/workflows.md): depends_on on enqueue and batch, the job view's
depends_on, children and parent_results, POST /api/flows and its refusals (400 naming the ref,
nothing written), and the SDK. Every reply is checked against /api/openapi.json."""

from __future__ import annotations

from typing import Any

import pytest

import relayq
from relayq import Queue
from tests.support.helpers import keyspace, wait_until
from tests.support.http import Api


def finish(q: Queue, result: Any = None) -> str:
    job = q.claim(1)[0]
    q.ack(job.id, job.lease, result)
    return job.id


def test_enqueue_with_depends_on_and_the_job_view(api: Api, q: Queue) -> None:
    parent = api.call("POST", f"/api/queues/{q.name}/jobs", {"payload": 1}).body["id"]
    reply = api.call(
        "POST",
        f"/api/queues/{q.name}/jobs",
        {"payload": 2, "depends_on": [parent], "on_parent_failure": "run"},
    )
    assert reply.status == 201 and reply.body["state"] == "waiting"
    child = reply.body["id"]
    view = api.call("GET", f"/api/jobs/{child}").body
    assert view["depends_on"] == [parent] and view["on_parent_failure"] == "run"
    assert api.call("GET", f"/api/jobs/{parent}").body["children"] == [child]
    listed = api.call("GET", f"/api/queues/{q.name}/jobs?state=waiting").body
    assert [j["id"] for j in listed["jobs"]] == [child]
    finish(q, {"x": 1})
    assert api.call("GET", f"/api/jobs/{child}").body["parent_results"] == {parent: {"x": 1}}


def test_a_batch_with_bad_parents_is_refused_naming_the_job(api: Api, q: Queue, r: Any) -> None:
    q.enqueue(0)
    before = keyspace(r, q.name)
    for bad, message in [
        (["nope"], "job 2: depends_on: invalid parent id"),
        ([f"{q.name}.42"], f"job 2: unknown parent {q.name}.42"),
        ("x.1", "job 2: depends_on must be a list"),
    ]:
        reply = api.call(
            "POST",
            f"/api/queues/{q.name}/jobs/batch",
            {"jobs": [{"payload": 1}, {"payload": 2, "depends_on": bad}]},
        )
        assert reply.status == 400, reply
        assert reply.body["error"]["code"] == "invalid_argument"
        assert message in reply.body["error"]["message"]
    assert keyspace(r, q.name) == before


def test_post_flows_makes_a_graph_across_queues(api: Api, q: Queue, r: Any) -> None:
    other = Queue(q.name + "-b", r)
    flow = {
        "jobs": [
            {"ref": "fetch", "queue": q.name, "payload": {"url": "u"}},
            *(
                {"ref": f"part{i}", "queue": other.name, "payload": i, "depends_on": ["fetch"]}
                for i in range(3)
            ),
            {
                "ref": "merge",
                "queue": q.name,
                "payload": {},
                "depends_on": ["part0", "part1", "part2"],
            },
        ]
    }
    reply = api.call("POST", "/api/flows", flow)
    assert reply.status == 201, reply
    made = {job["ref"]: job for job in reply.body["jobs"]}
    assert [job["ref"] for job in reply.body["jobs"]] == [
        "fetch",
        "part0",
        "part1",
        "part2",
        "merge",
    ]
    assert made["fetch"]["state"] == "ready" and made["merge"]["state"] == "waiting"
    merge = api.call("GET", f"/api/jobs/{made['merge']['id']}").body
    assert sorted(merge["depends_on"]) == sorted(made[f"part{i}"]["id"] for i in range(3))


@pytest.mark.parametrize(
    "jobs, message",
    [
        (
            [
                {"ref": "a", "queue": "q1", "payload": 1, "depends_on": ["b"]},
                {"ref": "b", "queue": "q1", "payload": 1, "depends_on": ["a"]},
            ],
            "cycle",
        ),
        (
            [{"ref": "a", "queue": "q1", "payload": 1, "depends_on": ["a"]}],
            "job a: depends on itself",
        ),
        (
            [{"ref": "a", "queue": "q1", "payload": 1, "depends_on": ["zz"]}],
            "job a: unknown ref zz",
        ),
        (
            [
                {"ref": "a", "queue": "q1", "payload": 1},
                {"ref": "b", "queue": "q1", "payload": 1, "priority": 999},
            ],
            "job b: priority",
        ),
        (
            [{"ref": "a", "queue": "q1", "payload": 1}, {"ref": "a", "queue": "q1", "payload": 1}],
            "job a: ref used twice",
        ),
        ([{"ref": "a", "queue": "bad name", "payload": 1}], "job a: invalid queue name"),
        (
            [{"ref": "a", "queue": "q1", "payload": 1, "depends_on": ["q1.5"]}],
            "job a: unknown parent q1.5",
        ),
        ([{"ref": str(i), "queue": "q1", "payload": 1} for i in range(1001)], "1 to 1000 jobs"),
    ],
)
def test_a_bad_flow_is_refused_naming_the_ref_and_writes_nothing(
    api: Api, r: Any, jobs: list[dict[str, Any]], message: str
) -> None:
    name = f"flowbad{abs(hash(message)) % 10_000}"
    for job in jobs:
        if job["queue"] == "q1":
            job["queue"] = name
        job["depends_on"] = [p.replace("q1.", name + ".") for p in job.get("depends_on", [])]
    message = message.replace("q1.", name + ".")
    reply = api.call("POST", "/api/flows", {"jobs": jobs})
    assert reply.status == 400  # invalid_argument (invalid_queue_name for a bad queue)
    assert reply.body["error"]["code"] in ("invalid_argument", "invalid_queue_name")
    assert message in reply.body["error"]["message"], reply.body
    assert keyspace(r, name) == {}


def test_the_sdk_enqueues_with_depends_on_and_reads_the_graph(
    client: relayq.Client, q: Queue
) -> None:
    parent = client.enqueue(q.name, {"a": 1}).id
    child = client.enqueue(q.name, {"b": 1}, depends_on=[parent])
    assert child.state == "waiting"
    finish(q, "r")
    job = client.get(child.id)
    assert (
        job.state == "ready" and job.depends_on == [parent] and job.parent_results == {parent: "r"}
    )
    assert client.get(parent).children == [child.id]


def test_the_server_moves_facts_across_queues_without_any_worker(api: Api, q: Queue) -> None:
    other = Queue(q.name + "-p", q.redis)
    parent = other.enqueue("p").id
    child = api.call(
        "POST", f"/api/queues/{q.name}/jobs", {"payload": "c", "depends_on": [parent]}
    ).body["id"]
    job = other.claim(1)[0]
    other.ack(job.id, job.lease, "done")
    wait_until(
        lambda: q.get(child).state == "ready",
        timeout=10,
        message="relayq-server's fact mover to release the child",
    )
    assert q.get(child).parent_results == {parent: "done"}
    # the mover drops the facts it applied just after applying them
    wait_until(lambda: not q.redis.exists(other.keys.prefix + "outbox"), timeout=10,
               message="the applied fact to leave the outbox")


def test_a_child_claimed_over_http_carries_its_parents_results(api: Api, q: Queue) -> None:
    """relayq-worker --server gets current_job().parent_results from the claim's JSON."""
    parent = q.enqueue(1).id
    child = q.enqueue(2, depends_on=[parent]).id
    finish(q, {"made": True})
    reply = api.call("POST", f"/api/queues/{q.name}/claim", {"worker_id": "w"})
    assert reply.status == 200, reply
    (job,) = reply.body["jobs"]
    assert job["id"] == child and job["parent_results"] == {parent: {"made": True}}
    assert job["depends_on"] == [parent]
