"""The one place that turns a Redis URL into a client, and that knows the client kinds apart.

Accepted: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``redis+sentinel://host:port[,host:port]/
<service>[/<db>]`` and ``redis+cluster://host:port[,host:port]``. A ``redis://`` or ``rediss://``
URL naming a Redis Cluster node is detected (one ``INFO cluster`` at connect) and gets a cluster
client; if that probe cannot reach the server, a plain client is returned. Default:
``RELAYQ_REDIS_URL``, else ``redis://localhost:6379/0``.

Clients are made with `decode_responses=True` and **without automatic resends**: redis-py would
otherwise resend a command after a broken connection or a timeout, and a resent enqueue that had
already run creates a second job. relayq's callers retry where it is safe (the worker, with
backoff; acks and nacks are idempotent for the lease holder). Per client kind:
- plain and Sentinel clients: `Retry(NoBackoff(), 0)`. A Sentinel client finds the primary
  anew on each new connection; a write refused by a demoted primary (READONLY) closes the
  connection and raises, and nothing ran. An old primary that is still alive after a failover
  (SENTINEL FAILOVER, a partition) is demoted by Sentinel only ~8 s later and accepts writes
  until then, which it then throws away: `follow_primary()`, called before each script call,
  asks the sentinels at most once a second, and redis-py drops connections to a primary that
  is no longer the one named.
- RedisCluster: `retry=Retry(NoBackoff(), 0)`, so a connection error or timeout is raised after
  the slot map is re-read, never resent. MOVED, ASK and TRYAGAIN are still followed: a node that
  answers them did not run the command, so following them cannot run anything twice. redis-py's
  ClusterPipeline does resend after connection errors, so relayq never uses it (see
  relayq/scripts.py, which pipelines on the node that owns the queue's slot instead).
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    ClusterError,
    MasterDownError,
    MovedError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry
from redis.sentinel import Sentinel

from . import redis_adapter
from .backoff import Backoff
from .errors import InvalidArgument, RedisBusy, RedisUnavailable
from .hostport import parse_host_port

DEFAULT_URL = "redis://localhost:6379/0"
PRIMARY_CHECK_S = 1.0  # how often a Sentinel client asks who the primary is
# when each Sentinel pool last asked (kept here, not as an attribute set on redis-py's pool)
_primary_checked_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

# redis.Redis or redis.cluster.RedisCluster: both speak the commands relayq uses. (Not to be
# confused with relayq.Client, the HTTP SDK.)
RedisClient = Any

# Replies that mean "this command did not run here, and the server is not serving it right
# now": a failover or a slot migration in progress. Callers see them as RedisUnavailable.
NOT_SERVING = (ClusterDownError, SlotNotCoveredError, TryAgainError, AskError, MovedError,
               ClusterError)
# The same, for a reply redis-py has no class for: WAIT sent to a node that has become a replica.
NOT_SERVING_REPLIES = ("WAIT cannot be used with replica instances",)
# Refusals for a state Redis is in, which passes: out of memory under noeviction, a read-only
# replica, loading its data, busy with a long script, a replica whose primary is down, a primary
# short of good replicas (min-replicas-to-write). The command did not run. Callers see them as
# RedisBusy (HTTP 503 with Retry-After), never as a bug. redis-py has classes for some; the
# others are told by the error code, the first word of the reply.
REDIS_STATES = (OutOfMemoryError, ReadOnlyError, BusyLoadingError, MasterDownError)
REDIS_STATE_CODES = ("BUSY", "NOREPLICAS")


def default_url() -> str:
    return os.environ.get("RELAYQ_REDIS_URL") or DEFAULT_URL


def _options(socket_timeout: float | None) -> dict[str, Any]:
    return {
        "decode_responses": True,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        # Off: while they are on ("auto", redis-py 8's default) redis.asyncio's pool skips its
        # check of an idle connection, and hands out one the server has closed (its timeout,
        # a CLIENT KILL, a restart); the command sent on it fails in a way that cannot tell
        # whether it ran, so relayq may not resend it. They serve Redis Enterprise's
        # MOVING/MIGRATING pushes, which come over RESP3 only.
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
    }


def _no_retry() -> Retry:
    """No resends (see the module's docstring); relayq.aio uses its asyncio twin."""
    return Retry(NoBackoff(), 0)


def _hosts(netloc: str) -> list[tuple[str, int]]:
    return [parse_host_port(part, "host in Redis URL")
            for part in netloc.rsplit("@", 1)[-1].split(",")]


@dataclass(frozen=True)
class Target:
    """A Redis URL, parsed and checked (`parse_url`): what both relayq.connect and
    relayq.aio.connect build a client from. `kind`: "url" (redis://, rediss://: a plain server
    or a Cluster node, told apart at connect), "unix", "sentinel" or "cluster"."""

    kind: str
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def parse_url(url: str | None = None) -> Target:
    """`url` (default: $RELAYQ_REDIS_URL, else redis://localhost:6379/0) checked and taken
    apart; InvalidArgument for a scheme or a Sentinel URL relayq does not accept."""
    url = url or default_url()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        return Target("unix", url)
    if scheme in ("redis", "rediss"):
        return Target("url", url)
    password = unquote(parts.password) if parts.password else None
    username = unquote(parts.username) if parts.username else None
    if scheme == "redis+sentinel":
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise InvalidArgument(
                "redis+sentinel:// URL needs a service name: .../<service>[/<db>]")
        return Target("sentinel", url, tuple(_hosts(parts.netloc)), path[0],
                      int(path[1]) if len(path) > 1 else 0, username, password,
                      parse_qs(parts.query).get("sentinel_password", [None])[0])
    if scheme == "redis+cluster":
        return Target("cluster", url, tuple(_hosts(parts.netloc)), username=username,
                      password=password)
    raise InvalidArgument(
        f"unsupported Redis URL scheme {scheme!r}: use redis://, rediss://, unix://, "
        "redis+sentinel:// or redis+cluster://"
    )


def client_options(socket_timeout: float | None, target: Target) -> dict[str, Any]:
    """The settings of every client relayq makes (sync or asyncio) for `target`."""
    options = _options(socket_timeout)
    if target.kind == "unix":  # no TCP keepalive on a unix socket
        options.pop("socket_keepalive")
    return options


SENTINEL_OPTIONS = {"socket_timeout": 5, "socket_connect_timeout": 2}  # talking to sentinels


def connect(url: str | None = None, *, socket_timeout: float | None = 30.0) -> RedisClient:
    """A client for `url`. `socket_timeout=None` is for connections that block (BLPOP)."""
    target = parse_url(url)
    options = client_options(socket_timeout, target)
    if target.kind == "unix":
        return redis.Redis.from_url(target.url, retry=_no_retry(), **options)
    if target.kind == "url":
        client = redis.Redis.from_url(target.url, retry=_no_retry(), **options)
        if not _is_cluster_node(client):
            return client
        client.close()
        if redis_adapter.database(client):
            raise cluster_database_refused(target.url)
        with cluster_reachable():
            return RedisCluster.from_url(target.url, retry=_no_retry(), **options)
    if target.kind == "sentinel":
        sentinel = Sentinel(
            list(target.hosts),
            sentinel_kwargs={"password": target.sentinel_password, **SENTINEL_OPTIONS},
            **options,
        )
        return sentinel.master_for(target.service, db=target.db, username=target.username,
                                   password=target.password, retry=_no_retry())
    nodes = [ClusterNode(h, p) for h, p in target.hosts]
    with cluster_reachable():
        return RedisCluster(startup_nodes=nodes, username=target.username,
                            password=target.password, retry=_no_retry(), **options)


def cluster_database_refused(url: str) -> InvalidArgument:
    """The error for a `redis://` URL of a Cluster node that selects a database other than 0."""
    return InvalidArgument(f"{url} is a Redis Cluster node: only database 0 exists there")


@contextmanager
def cluster_reachable() -> Iterator[None]:
    """A cluster client must reach a node when it is made (it reads the slot map and the
    command table): an unreachable cluster is RedisUnavailable, like any outage later."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError, RedisClusterException) as e:
        raise RedisUnavailable(f"Redis Cluster unreachable: {e}") from e


def connect_patiently(url: str | None,
                      on_retry: Callable[[RedisUnavailable, float], None]) -> RedisClient:
    """`connect(url)` and a PING, retried with capped exponential backoff for as long as Redis
    cannot be reached: for long-running processes, which wait for Redis rather than die.
    `on_retry(error, delay_s)` is called before each wait (it may raise to give up). The
    delays grow visibly, 0.5-1 s up to 5-10 s: a person watches this wait."""
    backoff = Backoff(first_s=1.0, cap_s=10.0, equal_jitter=True)
    while True:
        try:
            client = connect(url)
            with redis_errors():
                client.ping()
            return client
        except RedisUnavailable as e:
            delay = backoff.next_delay()
            on_retry(e, delay)
            time.sleep(delay)


def display_url(url: str) -> str:
    """A Redis URL fit to print: its password replaced by `***`."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{hosts}").geturl()


def _is_cluster_node(client: redis.Redis) -> bool:
    """True when the server says `cluster_enabled:1`; False when it does not, or cannot be
    asked (down, INFO disabled): the plain client then reports the real problem on first use."""
    probe = redis_adapter.client_like(client, db=0)  # a cluster node refuses SELECT
    try:
        return bool(probe.info("cluster").get("cluster_enabled"))
    except redis.RedisError:
        return False
    finally:
        probe.close()


# The answer of is_cluster per client class: RedisCluster's metaclass makes isinstance cost
# about 3 us, and the hot path asks on every script call.
_CLUSTER_BY_CLASS: dict[type, bool] = {}


def is_cluster(client: RedisClient) -> bool:
    """True for a Redis Cluster client: the one test of the client kind (`connect` tells a
    cluster node from a plain server when it makes the client)."""
    kind = type(client)
    known = _CLUSTER_BY_CLASS.get(kind)
    if known is None:
        known = _CLUSTER_BY_CLASS[kind] = isinstance(client, RedisCluster)
    return known


def node_client(client: RedisClient, key: str) -> redis.Redis:
    """The plain client that talks to the node serving `key`: the node's own client on Redis
    Cluster (so that several commands share one connection), `client` itself otherwise."""
    if is_cluster(client):
        with redis_errors():
            return client.get_redis_connection(client.get_node_from_key(key))
    return client


def refresh_topology(client: RedisClient) -> None:
    """Re-reads the cluster's slot map after a connection error or MOVED (a failover may have
    moved the slot to another node). Best effort; nothing to do for other clients."""
    if is_cluster(client):
        redis_adapter.reread_slot_map(client)


def follow_primary(client: RedisClient) -> None:
    """Sentinel clients: at most every PRIMARY_CHECK_S, asks the sentinels who the primary is;
    when it changed, redis-py disconnects idle connections to the old one (and busy ones when
    they are released). Nothing to do for other clients."""
    pool = redis_adapter.sentinel_pool(client)
    if pool is None:
        return
    now = time.monotonic()
    if now - _primary_checked_at.get(pool, 0.0) < PRIMARY_CHECK_S:
        return
    _primary_checked_at[pool] = now
    with redis_errors():
        redis_adapter.ask_sentinels(pool)


def on_primary(client: RedisClient, conn: Any) -> bool:
    """False when `conn`, a connection held out of `client`'s pool (a blocking one), is on a
    server Sentinel no longer names as primary (asked at most every PRIMARY_CHECK_S)."""
    pool = redis_adapter.sentinel_pool(client)
    if pool is None:
        return True
    follow_primary(client)
    return redis_adapter.on_named_primary(pool, conn)


@contextmanager
def redis_errors() -> Iterator[None]:
    """Turns a broken or refused Redis connection, or a node that is not serving (failover,
    migrating slot), into RedisUnavailable, and a refusal for a state Redis is in into RedisBusy:
    the one boundary."""
    try:
        yield
    except REDIS_STATES as e:
        raise RedisBusy(_state_message(e)) from e
    except (redis.ConnectionError, redis.TimeoutError, SlotNotCoveredError) as e:
        raise RedisUnavailable(f"Redis unavailable: {e}") from e
    except NOT_SERVING as e:
        raise RedisUnavailable(f"Redis not serving: {type(e).__name__}: {e}") from e
    except redis.ResponseError as e:
        if str(e).split(" ", 1)[0] in REDIS_STATE_CODES:
            raise RedisBusy(_state_message(e)) from e
        if str(e).startswith(NOT_SERVING_REPLIES):
            raise RedisUnavailable(f"Redis not serving: {e}") from e
        raise


def _state_message(e: redis.RedisError) -> str:
    code = getattr(e, "status_code", None) or str(e).split(" ", 1)[0]
    return f"Redis refused the command ({code}: {e}); nothing ran, try again later"
