"""Every limit and default of relayq, defined once.

This module owns the numbers: the ranges of job options and queue settings, the sizes of
strings and payloads, batch and page sizes, the rate-limit bounds, the queue defaults and the
shape of queue names and job ids. Nothing else writes them down:

- Python validation (`relayq.options`, `relayq.queue`, `relayq.api`, `relayq.export`) imports
  them from here;
- the Lua scripts get them from here too: `relayq.scripts` prepends to each script one
  `local NAME = value` line for every constant below that the script's source names
  (`lua_constants()`), when the scripts are loaded;
- the OpenAPI document (`relayq.api.openapi`) builds its bounds from them.

Tests fail when a copy of one of these numbers reappears: in `lua/` (tests/test_scripts.py), in
the package (tests/test_limits.py), or as an OpenAPI bound that differs from the constant it
documents (tests/api/test_openapi.py).
"""

from __future__ import annotations

# -- durations ---------------------------------------------------------------------------------

# The longest duration relayq accepts: delay_ms, timeout_ms, backoff, retention, idempotency TTL,
# and how far ahead of now a run_at may be (ten Julian years).
MAX_DURATION_MS = 315_576_000_000
# Lease length of a claim or heartbeat (visibility_ms): at most a day; 30 s unless given.
MAX_VISIBILITY_MS = 86_400_000
DEFAULT_VISIBILITY_MS = 30_000
# The latest time a restored job may carry (created_at, run_at, ...): the year 3000.
MAX_TIME_MS = 32_503_680_000_000

# -- jobs --------------------------------------------------------------------------------------

MIN_PRIORITY = 0
MAX_PRIORITY = 255  # higher first
MAX_ATTEMPTS = 1000  # the largest max_attempts of a job or a queue
MAX_RESTORED_ATTEMPTS = 1_000_000  # attempts already made, as a snapshot may record them
MAX_TYPE_BYTES = 200
MAX_IDEMPOTENCY_KEY_BYTES = 512
TRACEPARENT_BYTES = 55  # a job's trace: a W3C traceparent (relayq/tracing.py), exactly this long
MAX_WORKER_ID_BYTES = 200
MAX_HOST_BYTES = 255  # a host name in a worker's registry entry (RFC 1035)
MAX_ERROR_BYTES = 65_536  # a failure's text is cut to this
MAX_LEASE_NONCE_BYTES = 64  # the claimer's random prefix of each lease token
MAX_LEASE_BYTES = 128  # a lease token as a client may present it (nonce + hex counter)
MAX_JOB_ID_DIGITS = 20  # the number part of a job id: <epoch ms><6-digit sequence>
ID_SEQUENCE_MODULUS = 1_000_000  # the 6-digit sequence part of a job id
MAX_SEQUENCE = 2**53 - 1  # the id sequence a restore may raise a queue to (exact in Lua)

# -- payloads and results ----------------------------------------------------------------------

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_PAYLOAD_BYTES = 512 * 1024 * 1024  # Redis's largest string: the ceiling of any setting
MAX_JSON_DEPTH = 128  # arrays and objects within a payload or result (serde_json's default)
# Reading a snapshot (relayq.export.snapshot): the header line at most this long; a job line at
# most twice the payload limit (payload and result) plus this for the rest of it: last_error
# (64 KiB, each byte at most 6 once escaped), type, idempotency key, worker id, times, numbers.
MAX_SNAPSHOT_HEADER_BYTES = 64 * 1024
SNAPSHOT_LINE_OVERHEAD_BYTES = 512 * 1024

# -- calls, batches and pages ------------------------------------------------------------------

BATCH_LIMIT = 1000  # jobs per enqueue or restore script call: all or nothing within one call
# Workflows (docs/workflows.md): parents of one job, jobs of one flow (POST /api/flows), how old
# an unfinished cross-queue link is before a mover redoes it, facts moved per outbox read.
MAX_PARENTS = 1000
MAX_FLOW_JOBS = 1000
RELINK_AFTER_MS = 10_000
OUTBOX_BATCH = 1000
WORKFLOW_MOVE_INTERVAL_MS = 1000  # how often relayq-server moves every queue's facts
MAX_CLAIM_COUNT = 1000  # jobs per claim script call
MAX_HTTP_CLAIM_COUNT = 100  # jobs per claim over HTTP
MAX_WAIT_MS = 30_000  # the longest long poll of a claim over HTTP
# outcomes of one settle request, or leases of one batched heartbeat, over HTTP (the worker
# of relayq-worker --server sends at most its capacity: concurrency + prefetch)
MAX_HTTP_OUTCOMES = 1000
PROMOTE_PER_CLAIM = 1000  # due scheduled jobs a claim promotes on its way
SWEEP_LIMIT = 1000  # jobs per call of reap, promote, requeue or purge unless given
MAX_SWEEP_LIMIT = 10_000  # the most a caller may give
MAX_PAGE = 1000  # jobs per page of a listing (dead letters, jobs of one state)
DEFAULT_PAGE = 50
MAX_CURSOR_DIGITS = 12
# A search (`q=` of a job listing) reads at most this many index entries per page, whatever it
# finds: a page may hold fewer matches than asked, with a cursor to go on from.
SEARCH_SCAN_LIMIT = 2000
MAX_SEARCH_BYTES = 200  # the text searched for

# -- attempt history and the workers registry --------------------------------------------------

HISTORY_LIMIT = 25  # the attempts a job's history keeps (the newest)
MAX_HISTORY_ERROR_BYTES = 16_384  # an attempt's error in the history is cut to this
# A worker process refreshes its registry entry this often; the entry expires after
# WORKER_TTL_MS without one (three refreshes missed: the process is gone).
WORKER_REFRESH_MS = 5000
WORKER_TTL_MS = 3 * WORKER_REFRESH_MS

# -- worker processes (relayq-worker --processes, relayq/worker/supervisor.py) --------------------

PROCESS_RESTART_BASE_S = 0.25  # first wait before replacing a process that died (doubling)
PROCESS_RESTART_CAP_S = 30.0  # the longest, however many deaths in a row
PROCESS_QUICK_DEATH_S = 10.0  # a death this soon after start counts toward a crash loop
PROCESS_CRASH_LOOP = 5  # quick deaths in a row of one slot: the supervisor exits (1)
PROCESS_KILL_MARGIN_S = 12.0  # past --grace: a worker's drain releases leftovers within 10 s
PROCESS_STUCK_KILL_S = 1.0  # a process whose only running job timed out: SIGTERM, then this
# A handler whose job's cancel was requested has this long to end itself (check_cancelled);
# then the supervisor stops its process as it stops one over its timeout_ms.
PROCESS_CANCEL_GRACE_S = 2.0
PROCESS_CHECK_S = 0.05  # how often the supervisor checks timeouts and exits
PROCESS_MEMORY_CHECK_S = 1.0  # how often it reads each process's RSS

# -- running jobs: cancel, progress, the event log (lua/lib/events.lua) -------------------------

# A worker asks Redis about the jobs it runs (lease heartbeat, which also answers which of them
# have a cancel requested) at least this often while it runs any: a handler learns of a cancel
# within about this long. One call per queue and worker, whatever the number of jobs.
CANCEL_CHECK_MS = 333
# current_job().progress() writes at most once per this interval (a tight loop cannot flood
# Redis): a call sooner than that after the last write is dropped, unless it reports 1.0.
PROGRESS_INTERVAL_MS = 250
# The event log of each queue (a Redis Stream) keeps about the newest this many entries, unless
# the queue's `event_log_max` setting says otherwise (0: no log).
DEFAULT_EVENT_LOG_MAX = 10_000
MAX_EVENT_LOG = 10_000_000
EVENTS_PAGE = 200  # log entries read per call by an events reader (Queue.events, GET /api/events)

# -- periodic schedules (relayq/schedules.py, lua/*_schedule.lua) -----------------------------

MAX_SCHEDULE_ID_BYTES = 128
SCHEDULE_ID_PATTERN = rf"[A-Za-z0-9_.:-]{{1,{MAX_SCHEDULE_ID_BYTES}}}"
MIN_EVERY_MS = 100  # the shortest interval of an every_ms schedule
MAX_CRON_BYTES = 200  # a cron expression's text
MAX_TZ_BYTES = 64  # an IANA zone name
# A tick found more than this late when a firer runs was missed (nothing of relayq ran at its
# time): the schedule's misfire policy decides what it becomes. Ticks less late are each fired,
# whatever the policy: a firer runs about every second, and a Redis restart takes seconds.
MISFIRE_GRACE_MS = 5000
MAX_MISFIRE_JOBS = 1000  # jobs of missed ticks under misfire "all": the newest are kept
# How often relayq-server's main process fires the due ticks of every queue (workers fire those
# of their queues in their maintenance loop).
SCHEDULE_FIRE_INTERVAL_MS = 1000

# -- rate limit (token bucket, jobs per second) -------------------------------------------------

# At least one job per 1000 s: when throttled, Retry-After is then at most 1000 seconds.
MIN_RATE = 0.001
MAX_RATE = 1_000_000
MAX_BURST = 1_000_000

# -- fair queues: groups and concurrency limits (lua/lib/groups.lua, docs/fair-queues.md) -----

MAX_GROUP_BYTES = 128
# A group name: a tenant id, say. The scripts check the same set of characters
# (lib/groups.lua's group_chars, kept equal to this by tests/core/test_groups.py).
GROUP_PATTERN = rf"[A-Za-z0-9_.:-]{{1,{MAX_GROUP_BYTES}}}"
MAX_RUNNING_LIMIT = 1_000_000  # the largest max_running of a queue or a group
# Throttled groups whose next token is due that a claim puts back into the round robin at once
GROUP_UNPARK_PER_CLAIM = 100
MAX_GROUPS_PAGE = 1000  # groups per page of Queue.groups / GET /api/queues/{q}/groups

# -- queue settings: defaults and ranges (lua/configure.lua, lua/lib/config.lua) ----------------

SETTING_DEFAULTS = {
    "max_attempts": 5,
    "backoff_base_ms": 1000,
    "backoff_cap_ms": 3_600_000,
    "succeeded_ttl_ms": 86_400_000,  # finished jobs: 24 h
    "dead_ttl_ms": 604_800_000,  # dead letters: 7 days (or until purged or requeued)
    "idempotency_ttl_ms": 86_400_000,  # idempotency keys: 24 h
    "max_payload_bytes": DEFAULT_MAX_PAYLOAD_BYTES,
    "event_log_max": DEFAULT_EVENT_LOG_MAX,
    # fair queues (docs/fair-queues.md): 0 = no limit
    "max_running": 0,
    "group_max_running": 0,
    "group_rate": 0,
    "group_burst": 0,
}
SETTING_RANGES = {
    "max_attempts": (1, MAX_ATTEMPTS),
    "backoff_base_ms": (0, MAX_DURATION_MS),
    "backoff_cap_ms": (0, MAX_DURATION_MS),
    "succeeded_ttl_ms": (1, MAX_DURATION_MS),
    "dead_ttl_ms": (1, MAX_DURATION_MS),
    "idempotency_ttl_ms": (1, MAX_DURATION_MS),
    "max_payload_bytes": (1, MAX_PAYLOAD_BYTES),
    "event_log_max": (0, MAX_EVENT_LOG),
    "max_running": (0, MAX_RUNNING_LIMIT),
    "group_max_running": (0, MAX_RUNNING_LIMIT),
    "group_rate": (0, MAX_RATE),  # a number, not only an integer (FRACTIONAL_SETTINGS)
    "group_burst": (0, MAX_BURST),
}
# Settings that take a fractional number (jobs per second); the others are integers. A value of
# 1 marks one (a table of numbers, so that the scripts can be given it).
FRACTIONAL_SETTINGS = {"group_rate": 1}


def settings_value(name: str, stored: str | None) -> float:
    """A setting as the meta hash holds it (None: never set, so its default), as a number."""
    if stored is None:
        return SETTING_DEFAULTS[name]
    return float(stored) if name in FRACTIONAL_SETTINGS else int(float(stored))
DEFAULT_MAX_ATTEMPTS = SETTING_DEFAULTS["max_attempts"]

# -- the RESP gateway (relayq/gateway) --------------------------------------------------------

RESP_MAX_CONNECTIONS = 2000  # open RESP connections per server, beyond: -ERR max clients
RESP_MAX_ARGS = 2 * BATCH_LIMIT + 8  # arguments of one command (XADD of BATCH_LIMIT fields)
# The longest unfinished command a connection may send (a bulk of the payload limit plus the
# rest of its command): past it the connection is closed with a protocol error.
RESP_QUERY_SLACK_BYTES = 256 * 1024
RESP_IDLE_TIMEOUT_MS = 300_000  # a connection silent this long (and not blocked) is closed
RESP_KEEPALIVE_S = 60  # TCP keepalive: idle seconds before the first probe, then every 10 s
RESP_LEASE_MS = 300_000  # the lease of a stream entry handed out by XREADGROUP (visibility)
RESP_REAP_EVERY_MS = 1000  # the gateway recovers a stream's expired leases at most this often
# BLOCK or timeout of a blocking command (0 = forever), and an idle time of XPENDING/XCLAIM
RESP_MAX_BLOCK_MS = MAX_DURATION_MS
RESP_DEFAULT_COUNT = 100  # entries of XREADGROUP or XAUTOCLAIM without COUNT
RESP_KEY_RECHECK_MS = 1000  # an open connection's key is read again at most this often
# Queues that blocking commands wait on at once, per gateway: each has a thread and a Redis
# connection (BLPOP on its wake list); beyond it a blocking command answers server_busy.
RESP_MAX_WATCHED_QUEUES = 200
RESP_THREADS = 8  # threads of the gateway process that run Queue operations
GATEWAY_STOP_TIMEOUT_S = 5  # the gateway process and its watcher get this long to end

# -- relayq-server (relayq/api/cli.py) -----------------------------------------------------------

SERVER_STOP_TIMEOUT_S = 10  # a server worker still busy this long after SIGTERM is killed

# -- names -------------------------------------------------------------------------------------

MAX_QUEUE_NAME_LENGTH = 64
QUEUE_NAME_PATTERN = rf"[A-Za-z0-9_-]{{1,{MAX_QUEUE_NAME_LENGTH}}}"
JOB_ID_PATTERN = rf"{QUEUE_NAME_PATTERN}\.[0-9]{{1,{MAX_JOB_ID_DIGITS}}}"
MAX_KEY_NAME_BYTES = 200  # an API key's name


def lua_constants() -> dict[str, int | float | dict[str, object]]:
    """The constants the Lua scripts may name: every number (and table of numbers) above."""
    return {name: value for name, value in globals().items()
            if name.isupper() and isinstance(value, (int, float, dict))}
