"""The gateway inside relayq-server: jobs pushed through it are ordinary jobs of the HTTP API
(and so of the dashboard), and the server starts the gateway's process again when it dies."""

from __future__ import annotations

import json
import signal
import urllib.request
from typing import Any

import psutil
import redis

from tests.gateway.conftest import Gateway, start_gateway
from tests.support.helpers import wait_until


def test_jobs_pushed_through_resp_are_ordinary_jobs(rc: redis.Redis, gateway: Gateway,
                                                    admin_key: str, queue_name: str) -> None:
    rc.lpush(queue_name, '{"item": "book"}')

    def get(path: str) -> Any:
        request = urllib.request.Request(gateway.server.url + path,
                                         headers={"Authorization": f"Bearer {admin_key}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    assert get(f"/api/queues/{queue_name}")["ready"] == 1
    (job,) = get(f"/api/queues/{queue_name}/jobs?state=ready")["jobs"]
    assert job["payload"] == {"item": "book"} and job["state"] == "ready"
    assert job["max_attempts"] == 5 and job["type"] is None


def test_the_gateway_process_is_started_again_when_it_dies(redis_url: str) -> None:
    gw = start_gateway(redis_url, "--auth", "off")
    try:
        client = redis.Redis(port=gw.port, socket_timeout=2)
        assert client.ping()
        server = psutil.Process(gw.server.proc.pid)  # type: ignore[union-attr]
        (child,) = [p for p in server.children()
                    if any("multiprocessing.spawn" in part for part in p.cmdline())
                    and "resource_tracker" not in " ".join(p.cmdline())]
        child.send_signal(signal.SIGKILL)
        child.wait(5)

        def pings() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(pings, timeout=15, message="the gateway started again")
        client.close()
    finally:
        gw.server.stop()


def test_a_bad_or_busy_resp_address_stops_the_server_at_start(redis_url: str) -> None:
    import socket
    import subprocess
    import sys

    from relayq.tools.redis_process import free_port

    def server(resp_addr: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "relayq.api.cli", "--addr", f"127.0.0.1:{free_port()}",
             "--redis", redis_url, "--workers", "1", "--resp-addr", resp_addr],
            capture_output=True, text=True, timeout=60)

    bad = server("nowhere")
    assert bad.returncode == 2 and "--resp-addr" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = server(f"127.0.0.1:{taken.getsockname()[1]}")
    assert busy.returncode == 1 and "cannot listen on 127.0.0.1:" in busy.stderr, busy.stderr
