"""Contract tests of relayq/redis_adapter.py: each redis-py internal it relies on still exists and
still behaves as relayq needs, on a real redis-server (and a one-node Redis Cluster). A failure
names the internal and the redis-py version, so that upgrading redis-py past the range pinned
in pyproject.toml fails here, loudly, rather than somewhere in a failover."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError
from redis.sentinel import SentinelConnectionPool

import relayq
import relayq.aio
from relayq import redis_adapter
from relayq.tools.redis_process import RedisProcess
from tests.support.helpers import wait_until
from tests.support.topologies import Cluster


@contextmanager
def relied_on(internal: str) -> Iterator[None]:
    """Fails with the name of `internal` when what is inside raises or asserts."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - any change is reported the same way
        pytest.fail(f"redis-py {redis.__version__} changed {internal}, which "
                    f"relayq/redis_adapter.py relies on: {type(e).__name__}: {e}", pytrace=False)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisProcess]:
    with RedisProcess() as process:
        yield process


@pytest.fixture
def client(server: RedisProcess) -> Iterator[redis.Redis]:
    c = relayq.connect(f"{server.url.rsplit('/', 1)[0]}/3")
    yield c
    c.close()


def test_a_connection_is_made_with_the_pools_settings_outside_the_pool(
        client: redis.Redis) -> None:
    with relied_on("ConnectionPool.connection_class / ConnectionPool.connection_kwargs"):
        conn = redis_adapter.new_connection(client, client_name="adapter-test")
        assert type(conn) is client.connection_pool.connection_class
        redis_adapter.make_ready(conn)
        assert redis_adapter.command(conn, "CLIENT", "GETNAME") == "adapter-test"
        assert redis_adapter.command(conn, "CLIENT", "INFO").split(" db=")[1][0] == "3"
        assert redis_adapter.database(client) == 3
        in_pool = [c for c in client.client_list() if c["name"] == "adapter-test"]
        assert len(in_pool) == 1 and client.connection_pool._created_connections <= 1
        conn.disconnect()


def test_a_client_like_another_on_another_database(client: redis.Redis) -> None:
    with relied_on("ConnectionPool.connection_class / ConnectionPool.connection_kwargs"):
        probe = redis_adapter.client_like(client, db=0)
        try:
            assert probe.connection_pool.connection_kwargs["db"] == 0
            assert probe.info("server")["redis_version"]  # redis-py's reply parsing applies
            assert probe.connection_pool.connection_kwargs["port"] == (
                client.connection_pool.connection_kwargs["port"])
        finally:
            probe.close()


def test_a_connection_the_server_closed_is_replaced_before_use(client: redis.Redis) -> None:
    conn = redis_adapter.new_connection(client, client_name="adapter-closed")
    with relied_on("AbstractConnection.connect / can_read / disconnect"):
        redis_adapter.make_ready(conn)
        assert not conn.can_read()  # idle and healthy: nothing to read
        first = redis_adapter.command(conn, "CLIENT", "ID")
        assert client.client_kill_filter(_id=first) == 1
        wait_until(lambda: first not in {int(c["id"]) for c in client.client_list()},
                   message="the server to close the connection")
        redis_adapter.make_ready(conn)
        assert redis_adapter.command(conn, "CLIENT", "ID") != first
    conn.disconnect()


def test_commands_and_replies_on_a_connection(client: redis.Redis) -> None:
    conn = redis_adapter.new_connection(client)
    with relied_on("AbstractConnection.send_packed_command / read_response"):
        redis_adapter.make_ready(conn)
        assert redis_adapter.command(conn, "SET", "adapter:k", "v") == "OK"
        assert redis_adapter.command(conn, "GET", "adapter:k") == "v"  # decoded, as the client
        with pytest.raises(redis.ResponseError):
            redis_adapter.command(conn, "INCR", "adapter:k")
        assert redis_adapter.command(conn, "PING") == "PONG"  # nothing left unread
    with relied_on("AbstractConnection.send_packed_command / read_response (several)"):
        replies = redis_adapter.commands(conn, [("INCR", "adapter:n"), ("INCR", "adapter:k"),
                                                ("INCR", "adapter:n")])
        assert replies[0] == 1 and replies[2] == 2
        assert isinstance(replies[1], redis.ResponseError)
        assert redis_adapter.command(conn, "PING") == "PONG"
    conn.disconnect()


def test_pack_sends_the_bytes_redis_py_sends() -> None:
    """redis_adapter.pack is hiredis without redis-py's Python pass: the same bytes for what
    relayq sends (str, UTF-8 text, int, bytes; a first argument with spaces split into words),
    and a bad argument is a DataError, as through redis-py."""
    from redis.connection import HiredisRespSerializer

    serializer = HiredisRespSerializer()
    for args in [("EVALSHA", "a" * 40, 2, "relayq:{q}:meta", "relayq:{q}:x", "", "é 1"),
                 ("SCRIPT LOAD", "return 1"), (b"HSET", b"k", b"f\x00\xff", 7)]:
        with relied_on("HiredisRespSerializer.pack"):
            assert redis_adapter.pack(args) == b"".join(serializer.pack(*args))
        assert redis_adapter.pack(list(args)) == redis_adapter.pack(args)
    for bad in (None, True, {"a": 1}):
        with pytest.raises(redis.DataError):
            redis_adapter.pack(("SET", "k", bad))


class OneSentinel:
    """What a SentinelConnectionPool asks of its manager (redis.sentinel.Sentinel), answered
    from a variable: the primary is whatever `primary` says."""

    def __init__(self, primary: tuple[str, int]) -> None:
        self.primary = primary

    def discover_master(self, service_name: str) -> tuple[str, int]:
        return self.primary


def test_sentinel_pool_names_the_primary_and_disowns_an_old_one(server: RedisProcess) -> None:
    sentinels = OneSentinel(("127.0.0.1", server.port))
    with relied_on("SentinelConnectionPool(service_name, sentinel_manager, **kwargs)"):
        pool = SentinelConnectionPool("adapter-svc", sentinels, decode_responses=True)
        client = redis.Redis(connection_pool=pool)
    try:
        with relied_on("SentinelConnectionPool.service_name"):
            assert redis_adapter.sentinel_pool(client) is pool
            assert redis_adapter.sentinel_service(client) == "adapter-svc"
        with relied_on("SentinelConnectionPool.connection_kwargs (its connections find the "
                       "primary through the pool)"):
            conn = redis_adapter.new_connection(client)
            redis_adapter.make_ready(conn)
            assert redis_adapter.command(conn, "PING") == "PONG"
            assert (conn.host, conn.port) == sentinels.primary
        with relied_on("SentinelConnectionPool.get_master_address / owns_connection"):
            redis_adapter.ask_sentinels(pool)
            assert redis_adapter.on_named_primary(pool, conn)
            sentinels.primary = ("127.0.0.1", 1)  # a failover: another server is primary
            redis_adapter.ask_sentinels(pool)
            assert not redis_adapter.on_named_primary(pool, conn)
        conn.disconnect()
    finally:
        client.close()


def test_plain_clients_are_not_sentinel_clients(client: redis.Redis) -> None:
    assert redis_adapter.sentinel_pool(client) is None
    assert redis_adapter.sentinel_service(client) is None


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(masters=1).start()
    yield c
    c.stop()


def test_cluster_slot_map_is_reread_on_demand(cluster: Cluster) -> None:
    client = relayq.connect(cluster.url)
    assert isinstance(client, RedisCluster)
    node = redis.Redis(port=cluster.nodes[0].port, decode_responses=True)
    try:
        before = cluster.slot_map_reads()
        with relied_on("RedisCluster.nodes_manager.initialize()"):
            client.nodes_manager.initialize  # noqa: B018 - fails here if it is gone
            redis_adapter.reread_slot_map(client)
            assert cluster.slot_map_reads() > before, "the slot map was not read again"
        assert client.set("adapter:{k}", "v")
    finally:
        node.close()
        client.close()


# -- redis.asyncio (relayq.aio) ---------------------------------------------------------------

def test_an_asyncio_client_like_another_on_database_0(server: RedisProcess) -> None:
    async def scenario() -> tuple[int, int, str]:
        client = await relayq.aio.connect(f"{server.url.rsplit('/', 1)[0]}/3")
        probe = redis_adapter.aio_client_like(client, db=0)
        try:
            info = await probe.info("server")  # redis-py's reply parsing applies
            return (redis_adapter.database(client), redis_adapter.database(probe),
                    info["redis_version"])
        finally:
            await probe.aclose()
            await client.aclose()

    with relied_on("redis.asyncio ConnectionPool.connection_class / .connection_kwargs"):
        assert asyncio.run(scenario())[:2] == (3, 0)


def test_an_asyncio_client_packs_commands_with_hiredis(server: RedisProcess) -> None:
    async def scenario() -> tuple[Any, Any, list[bytes], type]:
        client = await relayq.aio.connect(server.url)
        try:
            redis_adapter.aio_hiredis_packing(client)
            await client.set("adapter:packed", "é 1")  # a connection made after: hiredis packs
            async with client.pipeline(transaction=False) as pipe:
                pipe.get("adapter:packed").strlen("adapter:packed")
                replies = await pipe.execute()
            conn = client.connection_pool.make_connection()
            return (await client.get("adapter:packed"), replies,
                    conn.pack_command("SET", "k", 1), type(conn).__mro__)
        finally:
            await client.aclose()

    with relied_on("redis.asyncio AbstractConnection.pack_command / HiredisRespSerializer"):
        value, replies, packed, mro = asyncio.run(scenario())
        assert value == "é 1" and replies == ["é 1", 4]
        assert packed == [b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n"]
        assert redis.asyncio.Connection in mro


def test_commands_on_a_kept_asyncio_connection(server: RedisProcess) -> None:
    """aio_commands: replies in order with error replies in place, on a connection outside the
    pool; one the server closed is replaced before use; nothing unread is left behind."""
    async def scenario() -> tuple[list[Any], list[Any], list[int]]:
        client = await relayq.aio.connect(server.url)
        conn = redis_adapter.aio_new_connection(client)
        try:
            first = await redis_adapter.aio_commands(
                conn, [("SET", "adapter:kept", "1"), ("HGET", "adapter:kept", "f"),
                       ("INCR", "adapter:kept")])
            await client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            await asyncio.sleep(0.05)  # the loop sees the EOF
            second = await redis_adapter.aio_commands(conn, [("GET", "adapter:kept")])
            name = f"kept-{id(conn)}"
            await redis_adapter.aio_commands(conn, [("CLIENT", "SETNAME", name)])
            listed = [c["name"] for c in await client.client_list()]
            return first, second, [listed.count(name)]
        finally:
            await conn.disconnect()
            await client.aclose()

    with relied_on("redis.asyncio AbstractConnection._writer / read_response / "
                   "_reader.at_eof()"):
        first, second, seen = asyncio.run(scenario())
        assert first[0] == "OK" and isinstance(first[1], redis.ResponseError) and first[2] == 2
        assert second == ["2"] and seen == [1]


def test_asyncio_cluster_slot_map_reread_and_commands_on_one_node(cluster: Cluster) -> None:
    node = redis.Redis(port=cluster.nodes[0].port, decode_responses=True)
    script = "return redis.call('SET', KEYS[1], ARGV[1])"
    sha = hashlib.sha1(script.encode()).hexdigest()

    async def scenario() -> tuple[list[Any], list[Any], int]:
        client = await relayq.aio.connect(cluster.url)
        try:
            before = cluster.slot_map_reads()
            with relied_on("redis.asyncio RedisCluster.nodes_manager.initialize()"):
                await redis_adapter.aio_reread_slot_map(client)
            reread = cluster.slot_map_reads() - before
            with relied_on("redis.asyncio ClusterNode.execute_pipeline() / PipelineCommand"):
                target = client.get_node_from_key("adapter:{aio}")
                node.script_flush()
                first = await redis_adapter.aio_node_commands(
                    target, [("EVALSHA", sha, 1, "adapter:{aio}", "v"), ("GET", "adapter:{aio}")])
                second = await redis_adapter.aio_node_commands(
                    target, [("SCRIPT", "LOAD", script), ("EVALSHA", sha, 1, "adapter:{aio}", "w"),
                             ("HGETALL", "adapter:{aio}"), ("GET", "adapter:{aio}")])
            return first, second, reread
        finally:
            await client.aclose()

    try:
        first, second, reread = asyncio.run(scenario())
    finally:
        node.close()
    assert reread > 0, "the slot map was not read again"
    # an error reply in its command's place (NOSCRIPT: nothing ran), the others answered
    assert isinstance(first[0], NoScriptError) and first[1] is None
    assert second[0] == sha and second[1] == "OK" and second[3] == "w"
    assert isinstance(second[2], redis.ResponseError)  # WRONGTYPE, in place


def _kill_other_clients(server: RedisProcess) -> None:
    """Closes every other client's connection, and waits until Redis has closed them (it does
    so after answering the kill)."""
    killer = redis.Redis.from_url(server.url)
    killer.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    wait_until(lambda: len(killer.client_list(_type="normal")) == 1, timeout=5)


def test_a_sync_client_replaces_a_connection_the_server_closed(server: RedisProcess) -> None:
    """The first command after the server closed an idle connection (its timeout, a CLIENT
    KILL) goes out on a new one instead of failing in a way that cannot tell whether it ran:
    redis-py's sync client sees the close (the asyncio twin needs relayq's help, below)."""
    client = relayq.connect(server.url)
    client.set("adapter:idle", "1")
    _kill_other_clients(server)
    with relied_on("redis's sync client on a connection the server closed"):
        assert client.incr("adapter:idle") == 2


def test_an_asyncio_client_replaces_a_connection_the_server_closed(server: RedisProcess) -> None:
    """The same for relayq.aio's clients: redis.asyncio's pool checks an idle connection only
    with maintenance notifications off (relayq.connection's options), and its check cannot
    see a close its event loop has not polled yet (redis_adapter.aio_checked_connections)."""
    async def scenario() -> Any:
        client = await relayq.aio.connect(server.url)
        try:
            await client.set("adapter:aidle", "1")
            _kill_other_clients(server)  # at once: the loop has not polled the socket since
            return await client.incr("adapter:aidle")
        finally:
            await client.aclose()

    with relied_on("redis.asyncio ConnectionPool.ensure_connection's can_read check"):
        assert asyncio.run(scenario()) == 2
