"""The private redis-server of the tools (`relayq dev`, `bench`, `chaos`) and of this project's
tests: defined in relayq/testing/redis_process.py, which the pytest plugin shares (the plugin
may not import the tools); this name stays for the tools and the tests that import it here."""

from ..testing.redis_process import (
    MIN_VERSION,
    NO_REDIS,
    NoRedis,
    RedisProcess,
    embedded_server,
    free_port,
    server_version,
    start_redis,
)

__all__ = ["MIN_VERSION", "NO_REDIS", "NoRedis", "RedisProcess", "embedded_server", "free_port",
           "server_version", "start_redis"]
