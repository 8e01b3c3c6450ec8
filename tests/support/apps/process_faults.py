"""Apps for tests/worker/test_supervisor.py that misbehave in a worker process of
`relayq-worker --processes` (which gets --supervisor-fds) but import fine in the supervisor:

- `crashing`: the process dies (exit 3) as soon as it has imported the app: a crash loop;
- `hungry:app`: its `hog` task keeps 160 MiB alive in its process: recycled by
  --max-memory-per-process."""

from __future__ import annotations

import os
import sys
from typing import Any

from relayq import App

app = App("process-faults")
_kept: list[bytes] = []


@app.task(queue="process-faults")
def hog(payload: Any) -> Any:
    _kept.append(b"x" * (160 * 1024 * 1024))  # touched pages: resident, not just reserved
    return payload


if os.environ.get("RELAYQ_TEST_CRASH") and "--supervisor-fds" in sys.argv:
    os._exit(3)
