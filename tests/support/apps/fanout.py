"""The app of the workflow scale tests and of scripts/bench_workflows.py: `part` sleeps
`ms` (payload) and answers `n`; `total` answers how many parts are below it and the sum of
their `n`. Each records the id of every job it runs in the file named by RELAYQ_TEST_RECORD,
when set (one file per process), so that a test counts runs outside Redis."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from relayq import App, current_job

app = App("fanout")
_lock = threading.Lock()


def _record() -> None:
    path = os.environ.get("RELAYQ_TEST_RECORD")
    if path:
        with _lock, open(path, "a") as f:
            f.write(current_job().id + "\n")


@app.task(name="part", default=True)
def part(payload: Any) -> Any:
    _record()
    if payload.get("ms"):
        time.sleep(payload["ms"] / 1000)
    return payload.get("n", 0)


@app.task(name="total")
def total(payload: Any) -> Any:
    _record()
    results = (current_job().parent_results or {}).values()
    # parents are parts (a number each) or totals below this one (a fan-in of fan-ins)
    return {
        "parts": sum(r["parts"] if isinstance(r, dict) else 1 for r in results),
        "sum": sum(r["sum"] if isinstance(r, dict) else r for r in results),
    }
