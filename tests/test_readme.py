"""The README's HTTP API walk-through runs as written (with this test's own Redis and port in
place of the defaults), so its curl examples stay true."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from relayq.tools.redis_process import RedisProcess, free_port
from tests.support.server import ROOT


def http_api_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## HTTP API", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readme_http_api_example_runs_as_written(tmp_path: Path) -> None:
    port = free_port()
    with RedisProcess() as redis_server:
        script = (http_api_example().replace("localhost:8080", f"127.0.0.1:{port}")
                  .replace("127.0.0.1:8080", f"127.0.0.1:{port}")
                  .replace("redis://localhost:6379/0", redis_server.url))
        assert "6379" not in script  # never the machine's shared Redis
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               "RELAYQ_REDIS_URL": redis_server.url}
        run = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script + "\nkill %1\nwait\n"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = run.communicate(timeout=90)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode in (0, 143), err  # 143: the server ended by `kill %1`
    assert "an admin key was created" in out  # the server's first start, on a new Redis
    enqueued = next(line for line in out.splitlines() if line.startswith('{"id":"emails.'))
    assert '"state":"ready","duplicate":false' in enqueued
    assert '{"state":"succeeded"}' in out
    assert '"result":{"sent":true}' in out and '"worker_id":"shell"' in out  # who ran it
    assert '"rate_limit":{"rate":50.0,"burst":100}' in out and '"paused":true' in out
    assert '{"status":"ready"}' in out
