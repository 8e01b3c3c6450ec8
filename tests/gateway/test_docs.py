"""The worked examples of docs/resp.md run as written, one per client (shell with redis-cli,
Python with redis-py, Node with ioredis), against a real gateway: port 6390 in a block is the
gateway's, and RELAYQ_API_KEY holds an admin key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.conftest import Gateway
from tests.gateway.test_ioredis import node_modules  # noqa: F401 (a fixture)
from tests.support.server import ROOT

DOC = ROOT / "docs" / "resp.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```\n", re.DOTALL | re.MULTILINE)


def examples() -> dict[str, str]:
    """The blocks of the 'Worked examples' section, by language."""
    section = DOC.read_text().split("## Worked examples", 1)[1]
    return {language: code for language, code in FENCE.findall(section)}


def test_every_client_has_an_example() -> None:
    assert set(examples()) == {"sh", "python", "js"}


@pytest.mark.parametrize("language, expected", [
    ("sh", ["2\n", "orders\n{\"item\":\"book\"}", "events", "action", "signup", "1\n"]),
    ("python", ["[1, 2, 3]", "('thumbnails', '{\"image\":0}')",
                "{'invoice': 'A-17', 'amount': '30'}"]),
    ("js", ["[ 'email', 'ada@example.com' ]"]),
])
def test_example_runs(language: str, expected: list[str], gateway: Gateway, admin_key: str,
                      node_modules: Path, tmp_path: Path) -> None:  # noqa: F811
    code = examples()[language].replace("6390", str(gateway.port))
    env = {**os.environ, "RELAYQ_API_KEY": admin_key, "NODE_PATH": str(node_modules)}
    command = {"sh": ["bash", "-euo", "pipefail", "-c", code],
               "python": [sys.executable, "-c", code],
               "js": ["node", "-e", code]}[language]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for text in expected:
        assert text in done.stdout, done.stdout
