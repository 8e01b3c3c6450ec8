"""Fair queues over HTTP (relayq/api/groups.py): `group` on enqueue, the groups listing, a
group's own limits; bad input is a 400 that writes nothing. Replies are checked against
/api/openapi.json by the `api` helper."""

from __future__ import annotations

from typing import Any

import pytest

from relayq import Queue
from relayq.limits import MAX_RUNNING_LIMIT
from tests.api.test_bad_input import refused
from tests.support.http import Api


def test_group_on_enqueue_listing_and_limits(api: Api, q: Queue) -> None:
    jobs = [{"payload": i, "group": "tenant-a"} for i in range(5)]
    jobs += [{"payload": i, "group": "tenant-b"} for i in range(2)]
    assert api.call("POST", f"/api/queues/{q.name}/jobs/batch", {"jobs": jobs}).status == 201
    one = api.call("POST", f"/api/queues/{q.name}/jobs", {"payload": 1, "group": "tenant-b"})
    assert one.status == 201 and q.get(one.body["id"]).group == "tenant-b"

    reply = api.call("PUT", f"/api/queues/{q.name}/groups/tenant-a/limits", {"max_running": 1})
    assert reply.status == 200
    assert reply.body == {
        "queue": q.name,
        "group": "tenant-a",
        "limits": {"max_running": 1, "rate": None, "burst": None},
    }
    claimed = api.call("POST", f"/api/queues/{q.name}/claim", {"count": 10}).body["jobs"]
    assert sorted(j["group"] for j in claimed) == ["tenant-a"] + ["tenant-b"] * 3

    page = api.call("GET", f"/api/queues/{q.name}/groups?limit=1")
    assert page.status == 200
    assert page.body["groups"] == [
        {
            "group": "tenant-a",
            "ready": 4,
            "running": 1,
            "max_running": 1,
            "rate": None,
            "burst": None,
            "state": "limited",
        }
    ]
    assert (page.body["total"], page.body["limited"]) == (2, 1)
    rest = api.call("GET", f"/api/queues/{q.name}/groups?cursor={page.body['next_cursor']}")
    assert [g["group"] for g in rest.body["groups"]] == ["tenant-b"]

    cleared = api.call("DELETE", f"/api/queues/{q.name}/groups/tenant-a/limits")
    assert cleared.body == {"queue": q.name, "group": "tenant-a", "limits": None}
    assert len(api.call("POST", f"/api/queues/{q.name}/claim", {"count": 10}).body["jobs"]) == 4


def test_a_throttled_group_answers_204_with_retry_after_only_when_alone(api: Api, q: Queue) -> None:
    api.call("PUT", f"/api/queues/{q.name}/groups/slow/limits", {"rate": 0.5, "burst": 1})
    for group in ("slow", "slow", "fast"):
        api.call("POST", f"/api/queues/{q.name}/jobs", {"payload": 1, "group": group})
    assert len(api.call("POST", f"/api/queues/{q.name}/claim", {"count": 5}).body["jobs"]) == 2
    throttled = api.call("POST", f"/api/queues/{q.name}/claim")
    assert throttled.status == 204 and 1 <= int(throttled.headers["Retry-After"]) <= 2


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/queues/{q}/jobs", {"payload": 1, "group": "no spaces"}),
        ("POST", "/api/queues/{q}/jobs", {"payload": 1, "group": ""}),
        ("POST", "/api/queues/{q}/jobs", {"payload": 1, "group": 5}),
        (
            "POST",
            "/api/queues/{q}/jobs/batch",
            {"jobs": [{"payload": 1, "group": "ok"}, {"payload": 2, "group": "x" * 129}]},
        ),
        ("PUT", "/api/queues/{q}/groups/a/limits", {"max_running": -1}),
        ("PUT", "/api/queues/{q}/groups/a/limits", {"max_running": MAX_RUNNING_LIMIT + 1}),
        ("PUT", "/api/queues/{q}/groups/a/limits", {"rate": 2}),  # no burst anywhere
        ("PUT", "/api/queues/{q}/groups/a/limits", {"rate": -1, "burst": 1}),
        ("PUT", "/api/queues/{q}/groups/a/limits", {"burst": 0}),
        ("PUT", "/api/queues/{q}/groups/a/limits", {"max_running": None}),
        ("PUT", "/api/queues/{q}/groups/a/limits", {"colour": "red"}),
        ("PUT", "/api/queues/{q}/groups/a/limits", {}),
        ("PUT", "/api/queues/{q}/groups/bad%20name/limits", {"max_running": 1}),
        ("DELETE", "/api/queues/{q}/groups/bad%20name/limits", None),
        ("GET", "/api/queues/{q}/groups?limit=0", None),
        ("GET", "/api/queues/{q}/groups?cursor=x", None),
    ],
)
def test_bad_group_input_is_400_and_writes_nothing(
    api: Api, r: Any, q: Queue, method: str, path: str, body: Any
) -> None:
    q.enqueue(1, group="a")
    refused(api, r, q, method, path, body, status=400, code="invalid_argument")
