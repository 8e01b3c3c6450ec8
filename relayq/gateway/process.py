"""The gateway as a process of its own, started and kept alive by `relayq-server --resp-addr`.

Its own process, so that it shares no interpreter lock with anything, and started with the
"spawn" method, so that it inherits nothing of the server (granian forks its HTTP workers from
the server's main process: a listening socket or client connections held by a thread of that
process would leak into every worker). `start()` returns once the gateway listens (or raises
RelayqError when it cannot, so that the server fails at start); if it dies later it is started
again after a pause. It stops with the server, and by itself if the server process vanishes.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from typing import Any

from ..errors import RelayqError
from ..limits import GATEWAY_STOP_TIMEOUT_S
from ..logs import log_event, setup_logging
from .session import GatewayConfig

log = logging.getLogger("relayq.gateway")
START_TIMEOUT_S = 30
RESTART_DELAY_S = 1.0


def _child(config: GatewayConfig, ready: Any, log_level: str, log_format: str) -> None:
    import signal

    from .server import serve_forever  # in the child only: the server's process never loads it

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops us
    setup_logging(log_level, log_format)
    serve_forever(config, ready)


class GatewayProcess:
    def __init__(self, config: GatewayConfig, log_level: str = "info",
                 log_format: str = "text") -> None:
        self.config = config
        self.log_args = (log_level, log_format)
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Any = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> GatewayProcess:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="relayq-gateway-watch",
                                         daemon=True)
        self._watcher.start()
        return self

    def _spawn(self) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_child, name="relayq-gateway", daemon=True,
                                        args=(self.config, child, *self.log_args))
        process.start()
        child.close()
        if not parent.poll(START_TIMEOUT_S):
            process.kill()
            raise RelayqError("the RESP gateway did not start")
        try:
            status, detail = parent.recv()
        except EOFError:
            raise RelayqError("the RESP gateway ended as it started") from None
        if status != "ok":
            process.join(GATEWAY_STOP_TIMEOUT_S)
            raise RelayqError(detail)
        self._process, self._conn = process, parent

    def _watch(self) -> None:
        """Starts the gateway again whenever it dies, until `stop()`."""
        while not self._stopping.is_set():
            self._process.join(timeout=1.0)
            if self._stopping.is_set() or self._process.is_alive():
                continue
            if self._process.exitcode == 0:
                # it stopped cleanly, so on a SIGTERM of its own: the whole process group was
                # told to stop (systemd does so), the server included; not started again
                log_event(log, logging.INFO, "gateway.stopped")
                return
            log_event(log, logging.WARNING, "gateway.died", exitcode=self._process.exitcode)
            from ..metrics import forget_process  # here: the server's process loads it late

            forget_process(self._process.pid)
            if self._stopping.wait(RESTART_DELAY_S):
                return
            try:
                self._spawn()
            except RelayqError as e:
                log_event(log, logging.WARNING, "gateway.restart_failed", error=str(e))

    def stop(self) -> None:
        self._stopping.set()
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()
            process.join(GATEWAY_STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join()
        if self._conn is not None:
            self._conn.close()
        if self._watcher is not None:
            self._watcher.join(GATEWAY_STOP_TIMEOUT_S)
