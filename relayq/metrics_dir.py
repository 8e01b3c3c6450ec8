"""The one directory every process of a multi-process relayq command counts its metrics into
(prometheus_client's multiprocess mode): `relayq-server --workers N` and
`relayq-worker --processes N`. Set in the parent before any process imports prometheus_client
(its value class is chosen at import), so that one /metrics gives the sum over all processes
rather than one process's share. Imports nothing of prometheus_client itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile

ENV = "PROMETHEUS_MULTIPROC_DIR"


def make_shared_metrics_dir(prefix: str) -> str | None:
    """Makes the directory and names it in the environment that child processes inherit.
    Returns its path, ours to remove with `remove_shared_metrics_dir`; None when the operator set
    PROMETHEUS_MULTIPROC_DIR already (theirs is kept and never removed)."""
    if os.environ.get(ENV):
        return None
    path = tempfile.mkdtemp(prefix=prefix)
    os.environ[ENV] = path
    return path


def remove_shared_metrics_dir(path: str | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
