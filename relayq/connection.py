"""The one place that turns a Redis URL into a client.

Accepted: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``redis+sentinel://host:port[,host:port]/
<service>[/<db>]`` and ``redis+cluster://host:port[,host:port]``. Default: ``RELAYQ_REDIS_URL``,
else ``redis://localhost:6379/0``.

Clients are made with `decode_responses=True` and **without automatic retries**: redis-py would
otherwise resend a command after a broken connection, and a resent enqueue that had already run
creates a second job. relayq's callers retry where it is safe (the worker, with backoff; acks
and nacks are idempotent for the lease holder).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import InvalidArgument, RedisUnavailable

DEFAULT_URL = "redis://localhost:6379/0"

Client = Any  # redis.Redis or redis.cluster.RedisCluster: both speak the commands relayq uses


def default_url() -> str:
    return os.environ.get("RELAYQ_REDIS_URL") or DEFAULT_URL


def _options(socket_timeout: float | None) -> dict[str, Any]:
    return {
        "decode_responses": True,
        "retry": Retry(NoBackoff(), 0),
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
    }


def _hosts(netloc: str) -> list[tuple[str, int]]:
    hosts = []
    for part in netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit():
            raise InvalidArgument(f"expected host:port in Redis URL, got {part!r}")
        hosts.append((host.strip("[]"), int(port)))
    return hosts


def connect(url: str | None = None, *, socket_timeout: float | None = 30.0) -> Client:
    """A client for `url`. `socket_timeout=None` is for connections that block (BLPOP)."""
    url = url or default_url()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    options = _options(socket_timeout)
    if scheme in ("redis", "rediss", "unix"):
        return redis.Redis.from_url(url, **options)
    password = unquote(parts.password) if parts.password else None
    username = unquote(parts.username) if parts.username else None
    if scheme == "redis+sentinel":
        from redis.sentinel import Sentinel

        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise InvalidArgument(
                "redis+sentinel:// URL needs a service name: .../<service>[/<db>]")
        db = int(path[1]) if len(path) > 1 else 0
        query = parse_qs(parts.query)
        sentinel_password = query.get("sentinel_password", [None])[0]
        sentinel = Sentinel(
            _hosts(parts.netloc),
            sentinel_kwargs={"password": sentinel_password, "socket_timeout": 5},
            **{k: v for k, v in options.items() if k != "retry"},
        )
        return sentinel.master_for(
            path[0], db=db, username=username, password=password, retry=options["retry"]
        )
    if scheme == "redis+cluster":
        from redis.cluster import ClusterNode, RedisCluster

        nodes = [ClusterNode(h, p) for h, p in _hosts(parts.netloc)]
        cluster_options = {k: v for k, v in options.items() if k != "retry"}
        return RedisCluster(
            startup_nodes=nodes, username=username, password=password, **cluster_options
        )
    raise InvalidArgument(
        f"unsupported Redis URL scheme {scheme!r}: use redis://, rediss://, unix://, "
        "redis+sentinel:// or redis+cluster://"
    )


@contextmanager
def redis_errors() -> Iterator[None]:
    """Turns a broken or refused Redis connection into RedisUnavailable (the one boundary)."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise RedisUnavailable(f"Redis unavailable: {e}") from e
