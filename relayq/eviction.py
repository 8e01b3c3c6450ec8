"""The startup check for Redis's eviction policy: any `maxmemory-policy` but `noeviction` lets
Redis delete keys when it runs out of memory, queue keys included (jobs vanish without a trace).

`check_eviction(client)` reads the policy of every primary the client writes to (each master of
a cluster; the current primary behind Sentinel) with `CONFIG GET`, or from `INFO memory` where
CONFIG is disabled (managed services often rename it), and reports the nodes that may evict and
those whose policy could not be read. The worker refuses to start on a risky policy unless given
`--allow-eviction`; the server can call the same function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from . import redis_adapter
from .connection import RedisClient, is_cluster, redis_errors

SAFE_POLICY = "noeviction"


@dataclass
class EvictionCheck:
    risky: dict[str, str] = field(default_factory=dict)    # node -> its evicting policy
    unknown: dict[str, str] = field(default_factory=dict)  # node -> why it could not be read

    @property
    def ok(self) -> bool:
        return not self.risky

    def message(self) -> str:
        """What to tell an operator (empty when there is nothing to say)."""
        lines = [f"Redis {node} has maxmemory-policy {policy}: under memory pressure it will "
                 f"evict keys, and relayq loses the jobs stored in them. Set "
                 f"maxmemory-policy {SAFE_POLICY} (or pass --allow-eviction to accept the risk)."
                 for node, policy in sorted(self.risky.items())]
        lines += [f"could not read maxmemory-policy of Redis {node} ({why}); make sure it is "
                  f"{SAFE_POLICY}" for node, why in sorted(self.unknown.items())]
        return "\n".join(lines)


def check_eviction(client: RedisClient) -> EvictionCheck:
    """The eviction policy of every primary behind `client`. RedisUnavailable when Redis
    cannot be reached."""
    check = EvictionCheck()
    with redis_errors():
        if is_cluster(client):
            nodes = [(n.name, client.get_redis_connection(n)) for n in client.get_primaries()]
        else:
            nodes = [(_name(client), client)]
        for name, node in nodes:
            policy = _policy(node)
            if policy.startswith("?"):
                check.unknown[name] = policy[1:]
            elif policy != SAFE_POLICY:
                check.risky[name] = policy
    return check


def _name(client: redis.Redis) -> str:
    """host:port, the socket path, or the Sentinel service name."""
    service = redis_adapter.sentinel_service(client)
    if service:
        return f"primary of {service}"
    kwargs = client.get_connection_kwargs()
    return str(kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}")


def _policy(node: redis.Redis) -> str:
    """The node's policy, or '?' + why it could not be read."""
    try:
        return str(node.config_get("maxmemory-policy")["maxmemory-policy"])
    except redis.ResponseError as e:  # CONFIG renamed away or not permitted: try INFO
        config_error = str(e)
    try:
        policy = node.info("memory").get("maxmemory_policy")
    except redis.ResponseError as e:
        return f"?CONFIG: {config_error}; INFO: {e}"
    return str(policy) if policy else f"?CONFIG: {config_error}; INFO memory has no policy"
