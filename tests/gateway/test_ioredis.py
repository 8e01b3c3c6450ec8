"""The gateway through Node's ioredis (tests/gateway/node/clients.js): a password, a pipeline
of pushes, a blocking pop woken by another connection's push, a stream read with a group and
acked. `.ci/run` installs ioredis (npm ci); the fixture does the same when it is missing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import relayq
from tests.gateway.conftest import Gateway

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    modules = NODE_DIR / "node_modules"
    if not (modules / "ioredis").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True,
                       timeout=300, capture_output=True)
    return modules


def run_node(script: Path, *args: str, modules: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", str(script), *args], capture_output=True, text=True,
                          timeout=60, env={"NODE_PATH": str(modules), "PATH": os.environ["PATH"]})


def test_ioredis_users_enqueue_block_and_consume(
        gateway: Gateway, admin_key: str, queue_name: str, q: relayq.Queue[Any],
        node_modules: Path) -> None:
    done = run_node(NODE_DIR / "clients.js", str(gateway.port), admin_key, queue_name,
                    modules=node_modules)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["pushes"] == list(range(1, 21)) and seen["llen"] == 20
    assert seen["popped"] == [json.dumps({"n": i}, separators=(",", ":")) for i in range(20)]
    assert seen["brpop"] == [queue_name, "wake up"]
    assert 250 <= seen["brpopMs"] < 2000  # woken by the push 300 ms in, not by a timeout
    assert seen["group"] == "OK"
    assert seen["read"] == [[f"{queue_name}-events", [[seen["ids"][0], ["item", "book"]],
                                                      [seen["ids"][1], ["item", "pen"]]]]]
    assert seen["pending"][0] == 2 and seen["pending"][3] == [["node-1", "2"]]
    assert seen["acked"] == 2 and seen["after"][0] == 0
    assert seen["unknown"].startswith("ERR unknown command 'NOSUCH'")
    assert seen["ping"] == "PONG"
    events = relayq.Queue(f"{queue_name}-events", q.redis)
    assert events.stats().succeeded == 2  # ordinary jobs, acked
