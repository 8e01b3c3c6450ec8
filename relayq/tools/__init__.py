"""Operator and development tools: `relayq dev` (devstack), `relayq bench` (bench, http_bench),
`relayq chaos` (chaos), the `relayq-demo` load generator (loadgen), and the helpers that run a
private redis-server or relayq-server process (redis_process, server_process).

Nothing of the library imports this package (`lint-imports` proves it): an application that
imports `relayq` never loads a tool. Only the CLI (`relayq.cli`) and the console scripts do."""
