"""relayq/tracing.py off: without opentelemetry installed, and with it installed but no tracer
provider set (what this test process has), enqueues store no trace and nothing is traced. The
traced path runs across real processes in tests/api/test_tracing.py."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import relayq
from relayq import tracing
from tests.support.helpers import ROOT

VALID = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize("text,valid", [
    (VALID, True),
    (None, False), ("", False), ("garbage", False),
    (VALID.upper(), False),  # W3C: lowercase hex only
    ("01" + VALID[2:], False),  # an unknown version
    ("00-" + "0" * 32 + VALID[35:], False),  # the all-zero trace id is invalid
    (VALID[:36] + "0" * 16 + "-01", False),  # so is the all-zero span id
    (VALID + "-extra", False),
])
def test_a_traceparent_is_checked_and_a_bad_one_ignored(text: str | None, valid: bool) -> None:
    assert tracing.valid_traceparent(text) == (text if valid else "")


def test_without_a_tracer_provider_nothing_is_traced(q: relayq.Queue[Any], r: Any) -> None:
    assert tracing.INSTALLED and not tracing.active()
    plain = q.enqueue({"n": 1}).id
    assert q.get(plain).trace is None
    # an untraced job's hash is what it was before traces existed: no field, no bytes
    assert "tp" not in r.hkeys(q.keys.job(q.local_id(plain)))
    assert tracing.outgoing_headers() == {}
    # a server that does not trace passes a valid incoming traceparent on to the job
    with tracing.incoming({"traceparent": VALID}):
        passed = q.enqueue_many([{"n": 2}])[0].id
    with tracing.incoming({"traceparent": "00-bad"}):
        ignored = q.enqueue({"n": 3}).id
    assert q.get(passed).trace == VALID and q.get(ignored).trace is None


def test_without_opentelemetry_installed_tracing_is_off(redis_url: str) -> None:
    code = f"""
import sys
sys.modules["opentelemetry"] = None  # as if relayq[otel] were not installed
import relayq
from relayq import tracing
assert not tracing.INSTALLED and not tracing.active()
q = relayq.Queue("t-no-otel", {redis_url!r})
job = q.get(q.enqueue({{"n": 1}}).id)
assert job.trace is None and job.to_dict()["trace"] is None
assert q.claim(1)[0].id == job.id
assert "opentelemetry.trace" not in sys.modules
print("off")
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.strip() == "off", proc.stderr
