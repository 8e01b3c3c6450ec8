"""Redis topologies the tests run against, each on free loopback ports in temp dirs, and
stopped by whoever started them (never a Redis we did not start):

- `Single`: one redis-server;
- `Cluster`: a Redis Cluster of N masters (slots split evenly, or as given), each with R replicas,
  bus ports pinned, built with CLUSTER ADDSLOTSRANGE / MEET / REPLICATE;
- `SentinelSetup`: a primary, a replica and one sentinel (quorum 1) watching them.

`RELAYQ_TEST_TOPOLOGY=single|cluster|sentinel` picks the one behind the `redis_url` fixture, so
the same test modules run on each (tests/conftest.py); the cluster and Sentinel test files start
their own. Each topology gives a `url` for `relayq.connect()` and the processes to kill.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.crc import key_slot

import relayq
from relayq.tools.redis_process import RedisProcess, free_port

ENV = "RELAYQ_TEST_TOPOLOGY"
SLOTS = 16384
SERVICE = "mymaster"
FAST_SYNC = ["--repl-diskless-sync-delay", "0"]  # a replica syncs at once, not after 5 s


def poll(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """`predicate()` until it is truthy (errors count as falsy), or TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (redis.RedisError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def admin(process: RedisProcess) -> redis.Redis:
    """A short-timeout client straight to one process (for setup, never for relayq)."""
    return redis.Redis(port=process.port, decode_responses=True, socket_timeout=5,
                       socket_connect_timeout=1)


class Single:
    name = "single"

    def __init__(self) -> None:
        self.server = RedisProcess()

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> Single:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()


class Cluster:
    """`masters` masters owning `slots` (a list of slot lists, one per master; default: an even
    split), each with `replicas` replicas."""

    name = "cluster"

    def __init__(self, masters: int = 3, replicas: int = 0,
                 slots: list[list[int]] | None = None, node_timeout_ms: int = 2000) -> None:
        self.slots = slots or [list(range(i * SLOTS // masters, (i + 1) * SLOTS // masters))
                               for i in range(masters)]
        self.nodes: list[RedisProcess] = []
        for _ in range(masters * (1 + replicas)):
            bus = free_port()
            self.nodes.append(RedisProcess(extra_args=[
                "--cluster-enabled", "yes", "--cluster-port", str(bus),
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout_ms), *FAST_SYNC]))
        self.masters = masters

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def bus_port(self, node: RedisProcess) -> int:
        return int(node.extra_args[node.extra_args.index("--cluster-port") + 1])

    def start(self, timeout: float = 30.0) -> Cluster:
        try:
            for node in self.nodes:
                node.start()
            clients = [admin(n) for n in self.nodes]
            ids = [c.execute_command("CLUSTER", "MYID") for c in clients]
            for i, (client, slots) in enumerate(zip(clients, self.slots)):
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
                for lo, hi in _ranges(slots):
                    client.execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
            first = self.nodes[0]
            for client in clients[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", first.port,
                                       self.bus_port(first))
            for i, client in enumerate(clients[self.masters:]):
                master_id = ids[i % self.masters]
                poll(lambda c=client, m=master_id: m in c.execute_command("CLUSTER", "NODES"),
                     timeout, "replica to learn of its master")
                client.execute_command("CLUSTER", "REPLICATE", master_id)
            self.wait_ok(timeout)
            for c in clients:
                c.close()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ok(self, timeout: float = 30.0, nodes: list[RedisProcess] | None = None) -> None:
        """Until every live node says cluster_state:ok and knows every node, and every
        replica's link to its master is up."""
        def ok(node: RedisProcess) -> bool:
            c = admin(node)
            try:
                info = c.execute_command("CLUSTER", "INFO")
                if "cluster_state:ok" not in info:
                    return False
                if f"cluster_known_nodes:{len(self.nodes)}" not in info:
                    return False
                repl = c.info("replication")
                return repl["role"] == "master" or repl.get("master_link_status") == "up"
            finally:
                c.close()
        for node in nodes or [n for n in self.nodes if n.proc and n.proc.poll() is None]:
            poll(lambda n=node: ok(n), timeout, f"cluster node {node.port} to be ok")

    def primary_for(self, key: str) -> RedisProcess:
        """The process that currently serves `key` as its master."""
        by_port = {n.port: n for n in self.nodes}
        for node in self.nodes:
            if node.proc is None or node.proc.poll() is not None:
                continue
            c = admin(node)
            try:
                slot = c.execute_command("CLUSTER", "KEYSLOT", key)
                for lo, hi, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
                    if lo <= slot <= hi:
                        return by_port[int(master[1])]
            except redis.RedisError:
                continue
            finally:
                c.close()
        raise RuntimeError(f"no live node knows who serves {key}")

    def queue_names(self, master: int, count: int, prefix: str = "q") -> list[str]:
        """`count` queue names whose slot is one that `master` (an index) was given at start."""
        owned, names, i = set(self.slots[master]), [], 0
        while len(names) < count:
            if key_slot(f"{{{prefix}{i}}}".encode()) in owned:
                names.append(f"{prefix}{i}")
            i += 1
        return names

    def slot_map_reads(self) -> int:
        """How many times clients have read the slot map (CLUSTER SLOTS/SHARDS/NODES), on all
        nodes together."""
        total = 0
        for node in self.nodes:
            stats = admin(node).info("commandstats")
            total += sum(stats.get(f"cmdstat_cluster|{sub}", {}).get("calls", 0)
                         for sub in ("slots", "shards", "nodes"))
        return total

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()



def _ranges(slots: list[int]) -> list[tuple[int, int]]:
    """Sorted slot numbers as (first, last) runs."""
    runs: list[tuple[int, int]] = []
    for s in sorted(slots):
        if runs and runs[-1][1] == s - 1:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    return runs


class SentinelProcess(RedisProcess):
    """redis-server in sentinel mode, watching the primary on `primary_port` (quorum 1)."""

    def __init__(self, primary_port: int) -> None:
        super().__init__()
        self.primary_port = primary_port

    def command(self) -> list[str]:
        conf = self.dir / "sentinel.conf"
        if not conf.exists():  # sentinel rewrites its file: keep what it learnt on restart
            conf.write_text("\n".join([
                f"port {self.port}", "bind 127.0.0.1", f"dir {self.dir}",
                f"logfile {self.dir / 'redis.log'}",
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 1",
                f"sentinel down-after-milliseconds {SERVICE} 1000",
                f"sentinel failover-timeout {SERVICE} 5000", ""]))
        return [self.binary, str(conf), "--sentinel"]


class SentinelSetup:
    name = "sentinel"

    def __init__(self) -> None:
        self.servers = [RedisProcess(extra_args=FAST_SYNC), RedisProcess()]
        self.servers[1].extra_args = [*FAST_SYNC, "--replicaof", "127.0.0.1",
                                      str(self.servers[0].port)]
        self.sentinel = SentinelProcess(self.servers[0].port)

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SERVICE}"

    def start(self, timeout: float = 30.0) -> SentinelSetup:
        try:
            for server in self.servers:
                server.start()
            self.wait_replicated(timeout)
            self.sentinel.start()
            self.wait_sentinel_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def primary(self) -> RedisProcess:
        """The server the sentinel names as primary now."""
        c = admin(self.sentinel)
        try:
            _host, port = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        finally:
            c.close()
        return next(s for s in self.servers if s.port == int(port))

    def replica(self) -> RedisProcess:
        primary = self.primary()
        return next(s for s in self.servers if s is not primary)

    def wait_replicated(self, timeout: float = 30.0) -> None:
        """Until the replica's link to the primary is up."""
        replica = self.replica() if self.sentinel.proc else self.servers[1]
        poll(lambda: admin(replica).info("replication").get("master_link_status") == "up",
             timeout, "the replica to sync")

    def wait_sentinel_ready(self, timeout: float = 30.0) -> None:
        """Until the sentinel knows a healthy replica it could promote."""
        def ready() -> bool:
            c = admin(self.sentinel)
            try:
                replicas = c.sentinel_slaves(SERVICE)
            finally:
                c.close()
            return any(not r["is_sdown"] and not r["is_disconnected"] and
                       r.get("master-link-status") == "ok" for r in replicas)
        poll(ready, timeout, "the sentinel to know the replica", interval=0.05)

    def failover(self) -> None:
        """SENTINEL FAILOVER: promotes the replica, demotes the primary."""
        admin(self.sentinel).execute_command("SENTINEL", "FAILOVER", SERVICE)

    def wait_primary_is(self, server: RedisProcess, timeout: float = 30.0) -> None:
        """Until the sentinel names `server`, it is a master, and clients can reach it."""
        def reachable() -> bool:
            client = relayq.connect(self.url, socket_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        poll(lambda: self.primary() is server and
             admin(server).info("replication")["role"] == "master" and reachable(), timeout,
             f"{server.port} to be the primary")

    def rejoin(self, server: RedisProcess, timeout: float = 30.0) -> None:
        """Restarts a killed server as a replica of the current primary, and waits until it
        is synced and the sentinel counts on it again."""
        server.extra_args = [*FAST_SYNC, "--replicaof", "127.0.0.1", str(self.primary().port)]
        server.start()
        self.wait_replicated(timeout)
        self.wait_sentinel_ready(timeout)

    def stop(self) -> None:
        for process in (self.sentinel, *self.servers):
            process.stop()


def pause(process: RedisProcess) -> None:
    """SIGSTOP: the process keeps its sockets but answers nothing (a stalled replica)."""
    assert process.proc is not None
    os.kill(process.proc.pid, signal.SIGSTOP)


def resume(process: RedisProcess) -> None:
    assert process.proc is not None
    os.kill(process.proc.pid, signal.SIGCONT)


def start_topology(name: str) -> Single | Cluster | SentinelSetup:
    """The topology called `name`, started."""
    kinds: dict[str, Callable[[], Any]] = {"single": Single, "cluster": Cluster,
                                           "sentinel": SentinelSetup}
    if name not in kinds:
        raise ValueError(f"{ENV} must be one of {', '.join(kinds)}, not {name!r}")
    return kinds[name]().start()


def session_url(request: Any) -> str:
    """The URL behind the `redis_url` fixture: the session's redis-server for `single` (the
    default), else the named topology, started once and stopped at the end of the session."""
    name = os.environ.get(ENV, "single")
    if name == "single":
        return request.getfixturevalue("redis_server").url
    topology = start_topology(name)
    request.addfinalizer(topology.stop)
    return topology.url
