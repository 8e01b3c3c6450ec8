"""The old spellings kept for one release after a rename, and the one warning they give.

| old (deprecated)                       | new                                               |
|----------------------------------------|---------------------------------------------------|
| `Queue.requeue_dead(id)`               | `Queue.requeue_dead_job(id)`                      |
| `Queue.requeue_dead()` (no id)         | `Queue.requeue_all_dead()`                        |
| `Queue.purge_dead(id)` / `()`          | `Queue.purge_dead_job(id)` / `purge_all_dead()`   |
| `Queue.wait` (the replication setting) | `Queue.replication`                               |
| `Client.requeue_dead(q, id)` / `(q)`   | `Client.requeue_dead_job(id)` / `requeue_all_dead(q)` |
| `Client.purge_dead(q, id)` / `(q)`     | `Client.purge_dead_job(id)` / `purge_all_dead(q)` |

After the rename a name has one meaning everywhere: `*_dead_job` acts on one job, `*_all_dead`
on every dead job of a queue, `wait` waits for a job (`Client.wait`), and the replication
setting is `replication`.
"""

from __future__ import annotations

import warnings

REMOVED_IN = "0.2"


def deprecated(old: str, new: str) -> None:
    """Warns (DeprecationWarning, at the caller's caller) that `old` is now `new`."""
    warnings.warn(f"{old} is deprecated and goes away in relayq {REMOVED_IN}: use {new}",
                  DeprecationWarning, stacklevel=3)
