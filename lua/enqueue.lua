-- enqueue.lua: create one or more jobs (all or nothing on validation).
--
-- Each job becomes a hash relayq:{<q>}:job:<id> and is made ready (tail of its priority list)
-- or scheduled (by due time). With an idempotency key already seen on this queue within its TTL,
-- nothing is created and the original id is answered with duplicate = 1. The checks and the
-- writes are lib/jobs.lua's (shared with fire_schedule.lua).
--
-- KEYS[1] relayq:{<q>}:meta       HASH  queue settings (paused, defaults, retention)
-- KEYS[2] relayq:{<q>}:prios      ZSET  priorities with a non-empty ready list
-- KEYS[3] relayq:{<q>}:scheduled  ZSET  job id by due time (ms)
-- KEYS[4] relayq:{<q>}:totals     HASH  lifetime counters
-- KEYS[5] relayq:{<q>}:seq        STRING id sequence
-- KEYS[6] relayq:{<q>}:wake       LIST  wake-up token for idle workers
-- ARGV[1] key prefix relayq:{<q>}:  (job, ready and idem keys are built from it)
-- ARGV[2] queue name (for events)
-- ARGV[3] number of jobs N (1..BATCH_LIMIT)
-- ARGV[4 + 12*(i-1) ...] per job, 12 fields ('' = absent):
--   payload (JSON text), type, priority (MIN_PRIORITY..MAX_PRIORITY), delay_ms (>= 0),
--   run_at (epoch ms, at most MAX_DURATION_MS from now), max_attempts (1..MAX_ATTEMPTS),
--   idempotency_key, timeout_ms, backoff_base_ms, backoff_cap_ms,
--   group (fair queues: lib/groups.lua; stored as 'g' only when given),
--   trace (a W3C traceparent, checked by relayq/tracing.py; stored as 'tp' only when given)
--   (the limits are relayq/limits.py's, prepended by relayq/scripts.py)
--
-- Reply: {'ok', id_1, state_1, duplicate_1, ..., id_N, state_N, duplicate_N}
--        (state is '' when a duplicate's original job has already expired)
--    or  {'invalid_argument' | 'payload_too_large' | 'invalid_payload', message}: nothing written.

--@include lib/jobs.lua

local bad_keys = keys_problem(6, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local k = {meta = KEYS[1], prios = KEYS[2], scheduled = KEYS[3], totals = KEYS[4],
           seq = KEYS[5], wake = KEYS[6]}
local prefix, queue = ARGV[1], ARGV[2]

local n, err = int_arg(ARGV[3], 'job count', 1, BATCH_LIMIT)
if not n then return {'invalid_argument', err} end
if #ARGV ~= 3 + job_fields * n then
  return {'invalid_argument',
          string.format('expected %d job fields, got %d', job_fields * n, #ARGV - 3)}
end

local now = now_ms()
local settings = job_settings(k.meta)

-- Check every job before writing anything.
local jobs = {}
for i = 1, n do
  local job, e, status = check_job(ARGV, 3 + job_fields * (i - 1), now, settings)
  if not job then
    if n > 1 then e = string.format('job %d: %s', i, e) end
    return {status or 'invalid_argument', e}
  end
  jobs[i] = job
end

-- writes below
return create_jobs(prefix, queue, k, jobs, now, settings, {'ok'})
