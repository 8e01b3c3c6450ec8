"""Measures relayq-server with wrk, in one run: single-job `POST /api/queues/{q}/jobs` at 1, 8
and 32 connections, `GET /healthz` at 8, and `GET /healthz` at 8 while 500 idle connections
(no key, no bytes) are held open; beside the direct single-connection `enqueue_per_s` of
`relayq bench` on the same Redis. Needs `wrk` on PATH.

    python scripts/measure_server.py [--seconds 10] [server flags, e.g. --workers 2]
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import relayq
from relayq.auth import KeyStore
from relayq.tools.redis_process import RedisProcess
from relayq.tools.server_process import ServerProcess

POST_LUA = """wrk.method = "POST"
wrk.body = '{"payload": {"n": 1}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


def wrk(url: str, connections: int, seconds: int, script: Path | None = None) -> str:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+(\S+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return (f"{float(rps.group(1)) if rps else 0:8.0f} req/s  p99 {p99.group(1) if p99 else '-':>9}"
            f"  non-2xx {non2xx.group(1) if non2xx else 0}"
            + (f"  socket errors: {errors.group(1)}" if errors else ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--idle", type=int, default=500)
    args, server_args = p.parse_known_args()
    assert shutil.which("wrk"), "wrk is not installed"
    with RedisProcess() as redis_server, tempfile.TemporaryDirectory() as tmp:
        r = relayq.connect(redis_server.url)
        key = KeyStore(r).create("measure", ["admin"])[1]
        script = Path(tmp) / "post.lua"
        script.write_text(POST_LUA % key)
        queue = relayq.Queue("direct", r)
        started = time.perf_counter()
        for i in range(5000):
            queue.enqueue({"n": i})
        direct = 5000 / (time.perf_counter() - started)
        print(f"direct enqueue_per_s (1 connection): {direct:.0f}")
        with ServerProcess(redis_server.url, "--log-level", "warning", *server_args) as server:
            url = f"{server.url}/api/queues/wrk/jobs"
            wrk(url, 8, 2, script)  # warm up
            for c in (1, 8, 32):
                print(f"enqueue  c={c:<3} {wrk(url, c, args.seconds, script)}")
            print(f"healthz  c=8   {wrk(server.url + '/healthz', 8, args.seconds)}")
            idle = [socket.create_connection(("127.0.0.1", server.port))
                    for _ in range(args.idle)]
            print(f"healthz  c=8 with {args.idle} idle connections held: "
                  f"{wrk(server.url + '/healthz', 8, args.seconds)}")
            for s in idle:
                s.close()


if __name__ == "__main__":
    main()
