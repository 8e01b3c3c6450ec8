"""examples/fastapi_app as a user runs it: the FastAPI app under a real ASGI server (granian),
a real relayq-worker with the example's tasks, a real redis-server. A request enqueues with
relayq.aio and awaits the job's result; many at once share the event loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import urllib3

from relayq.tools.redis_process import free_port
from tests.support.helpers import ROOT, wait_until, worker_process

EXAMPLE = ROOT / "examples" / "fastapi_app"
GRANIAN = Path(sys.executable).parent / "granian"


@pytest.fixture
def example_env(redis_url: str) -> dict[str, str]:
    return {**os.environ, "RELAYQ_REDIS_URL": redis_url,
            "REPORTS_QUEUE": f"reports-{uuid.uuid4().hex[:8]}"}


@pytest.fixture
def api_url(example_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    with (tmp_path / "granian.log").open("wb") as log:
        server = subprocess.Popen(
            [str(GRANIAN), "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1", "main:api"], cwd=EXAMPLE, env=example_env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    http = urllib3.PoolManager(retries=False)

    def up() -> bool:
        assert server.poll() is None, (tmp_path / "granian.log").read_text()[-2000:]
        try:
            return http.request("GET", url + "/openapi.json", timeout=1).status == 200
        except urllib3.exceptions.HTTPError:
            return False
    try:
        wait_until(up, timeout=30, interval=0.05, message="the example app to answer")
        yield url
    finally:
        server.terminate()
        server.wait(15)


def _post(url: str, body: Any) -> tuple[int, Any]:
    response = urllib3.request("POST", url, body=json.dumps(body),
                               headers={"Content-Type": "application/json"}, timeout=20)
    return response.status, response.json()


def test_the_app_enqueues_and_awaits_results(api_url: str, redis_url: str,
                                             example_env: dict[str, str],
                                             tmp_path: Path) -> None:
    with worker_process(redis_url, example_env["REPORTS_QUEUE"], "--app", "tasks:app",
                        log=tmp_path / "worker.log", cwd=EXAMPLE):
        status, body = _post(api_url + "/reports", {"numbers": [1, 2, 3]})
        assert status == 200, body
        assert (body["total"], body["count"]) == (6, 3)
        assert body["id"].startswith(example_env["REPORTS_QUEUE"] + ".")

        with ThreadPoolExecutor(8) as pool:  # requests wait together on one event loop
            results = list(pool.map(lambda n: _post(api_url + "/reports",
                                                    {"numbers": list(range(n))}), range(1, 17)))
        assert [b["total"] for _, b in results] == [sum(range(n)) for n in range(1, 17)]

        status, body = _post(api_url + "/reports", {"numbers": []})  # the task fails for good
        assert status == 422 and body["detail"]["state"] == "dead"
        assert "a report needs numbers" in body["detail"]["error"]

        status, body = _post(api_url + "/reports/later", {"numbers": [5]})
        assert status == 202
        job_url = f"{api_url}/reports/{body['id']}"
        done = wait_until(lambda: (r := urllib3.request("GET", job_url).json())["state"]
                          == "succeeded" and r, message="the later report")
        assert done["result"] == {"total": 5, "count": 1}
    assert urllib3.request("GET", api_url + "/reports/nope.1").status == 404
