"""The tasks of the example: what the worker runs (`relayq-worker --app tasks:app`)."""

import os

import relayq

QUEUE = os.environ.get("REPORTS_QUEUE", "reports")

app = relayq.App(queue=QUEUE)


@app.task
def report(payload: dict) -> dict:
    """Sums the numbers of a report: stands for slow work a web request should not do."""
    numbers = payload["numbers"]
    if not numbers:
        raise relayq.Fail("a report needs numbers")  # straight to the dead letters
    return {"total": sum(numbers), "count": len(numbers)}
