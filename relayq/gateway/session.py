"""What the gateway shares for the life of its process (`Gateway`: settings, the Redis client,
the key store, queues, the wake hub) and what each connection holds (`Session`: its key, its
protocol version, its name); the check every command passes (`Session.require`): the same keys
and scopes as the HTTP API (relayq.auth), a key re-read at most every RESP_KEY_RECHECK_MS so
that a revoked key stops working on open connections too."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..auth import ApiKey, KeyStore
from ..connection import connect, redis_errors
from ..errors import Forbidden, TooManyRequests, Unauthorized
from ..limits import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    RESP_IDLE_TIMEOUT_MS,
    RESP_KEY_RECHECK_MS,
    RESP_LEASE_MS,
    RESP_MAX_ARGS,
    RESP_MAX_CONNECTIONS,
)
from ..queue import Queue
from ..throttle import DEFAULT_BURST, DEFAULT_RATE, AuthThrottle
from .resp import Error, Writer
from .wake import WakeHub

QUEUE_CACHE_SIZE = 1024
LEASE_CACHE_SIZE = 100_000  # leases of stream entries this process handed out (for XACK)


@dataclass(frozen=True)
class GatewayConfig:
    """Settings of the RESP listener (`relayq-server --resp-*`)."""

    host: str = "127.0.0.1"
    port: int = 6390
    redis_url: str | None = None
    auth: bool = True
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_connections: int = RESP_MAX_CONNECTIONS
    max_args: int = RESP_MAX_ARGS
    idle_timeout_ms: int = RESP_IDLE_TIMEOUT_MS
    lease_ms: int = RESP_LEASE_MS
    auth_failure_rate: float = DEFAULT_RATE
    auth_failure_burst: int = DEFAULT_BURST


class Gateway:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.redis = connect(config.redis_url)
        self.keys = KeyStore(self.redis)
        # the HTTP API's rule for failed authentications, per client address (relayq.throttle)
        self.auth_throttle = AuthThrottle(config.auth_failure_rate, config.auth_failure_burst)
        self.hub = WakeHub()
        self.queue = lru_cache(maxsize=QUEUE_CACHE_SIZE)(self._make_queue)
        # job id -> lease token of its XREADGROUP claim (the pool's threads share it)
        self._leases: dict[str, str] = {}
        self._leases_lock = threading.Lock()
        self.reaped_at: dict[str, float] = {}  # queue -> when its expired leases were recovered
        self.connections = 0
        self._next_id = 0

    def _make_queue(self, name: str) -> Queue[Any]:
        return Queue(name, self.redis, max_payload_bytes=self.config.max_payload_bytes)

    def new_client_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def remember_lease(self, job_id: str, lease: str) -> None:
        with self._leases_lock:
            if len(self._leases) >= LEASE_CACHE_SIZE:
                del self._leases[next(iter(self._leases))]  # the oldest: XACK reads Redis
            self._leases[job_id] = lease

    def lease_of(self, job_id: str) -> str | None:
        with self._leases_lock:
            return self._leases.get(job_id)

    def forget_lease(self, job_id: str) -> None:
        with self._leases_lock:
            self._leases.pop(job_id, None)

    def redis_time_ms(self) -> int:
        with redis_errors():
            seconds, micros = self.redis.time()
        return seconds * 1000 + micros // 1000


@dataclass
class Session:
    """One connection's state; only the thread running its commands touches it."""

    id: int
    address: str  # host:port of the peer
    host: str  # the peer's address, as the auth throttle counts it
    writer: Writer = field(default_factory=Writer)
    key: ApiKey | None = None
    authenticated: bool = False
    checked_at: float = 0.0
    name: str | None = None
    info: dict[str, str] = field(default_factory=dict)
    closing: bool = False

    def login(self, gateway: Gateway, key: str) -> None:
        """AUTH: the key's record, or Error(WRONGPASS) (and the session is logged out); while
        this address has failed too often, an error before the key is looked at."""
        if not gateway.config.auth:
            self.authenticated = True
            return
        try:
            gateway.auth_throttle.check(self.host)
            self.key = gateway.keys.authenticate(key)
        except TooManyRequests as e:
            self.key, self.authenticated = None, False
            raise Error(f"{e.code}: {e.message}") from None
        except Unauthorized:
            self.key, self.authenticated = None, False
            gateway.auth_throttle.failed(self.host)
            raise Error("invalid username-password pair or user is disabled.",
                        "WRONGPASS") from None
        self.authenticated, self.checked_at = True, time.monotonic()

    def require(self, gateway: Gateway, scope: str | None) -> None:
        """Error(NOAUTH) before AUTH, Error(NOPERM) without `scope` (None: any key will do)."""
        if not gateway.config.auth:
            return
        if not self.authenticated or self.key is None:
            raise Error("Authentication required.", "NOAUTH")
        if time.monotonic() - self.checked_at > RESP_KEY_RECHECK_MS / 1000:
            try:
                self.key = gateway.keys.get(self.key.id)
            except Unauthorized:
                self.key, self.authenticated = None, False
                raise Error("Authentication required: the key was revoked.",
                            "NOAUTH") from None
            self.checked_at = time.monotonic()
        if scope is not None and not self.key.allows(scope):
            raise Error(str(Forbidden(f"this API key lacks the scope {scope!r}")), "NOPERM")
