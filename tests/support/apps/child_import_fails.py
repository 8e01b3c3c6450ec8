"""An app that imports in the supervisor of `relayq-worker --processes` but fails to import in
its worker processes (which get --supervisor-fds): the case where a process that cannot start
must end the supervisor with exit 2 instead of a crash loop."""

from __future__ import annotations

import sys

from relayq import App

if "--supervisor-fds" in sys.argv:
    raise ImportError("this app fails to import in a worker process (on purpose)")

app = App("child-import-fails")


@app.task(queue="child-import-fails")
def noop(payload: object) -> object:
    return payload
