"""The RESP gateway: `relayq-server --resp-addr HOST:PORT` serves the Redis protocol, so that any
Redis client enqueues and consumes relayq jobs (docs/resp.md).

An edge like relayq.api: it maps Redis commands to the same `Queue` operations and the same API
keys and scopes as the HTTP API, and the core never imports it. `process` runs it as a process of
its own beside the HTTP workers; `server` is its asyncio listener; `resp` reads (with hiredis)
and writes the protocol; `session` holds what the gateway and each connection share, auth
included; `commands` is the command table (lists and connection commands), `streams` the stream
commands; `wake` wakes blocking commands on enqueues.
"""
