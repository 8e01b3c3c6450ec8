-- enqueue.lua: create one or more jobs (all or nothing on validation).
--
-- Each job becomes a hash relayq:{<q>}:job:<id> and is made ready (tail of its priority list)
-- or scheduled (by due time). With an idempotency key already seen on this queue within its TTL,
-- nothing is created and the original id is answered with duplicate = 1.
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
-- ARGV[4 + 10*(i-1) ...] per job, 10 fields ('' = absent):
--   payload (JSON text), type, priority (MIN_PRIORITY..MAX_PRIORITY), delay_ms (>= 0),
--   run_at (epoch ms, at most MAX_DURATION_MS from now), max_attempts (1..MAX_ATTEMPTS),
--   idempotency_key, timeout_ms, backoff_base_ms, backoff_cap_ms
--   (the limits are relayq/limits.py's, prepended by relayq/scripts.py)
--
-- Reply: {'ok', id_1, state_1, duplicate_1, ..., id_N, state_N, duplicate_N}
--        (state is '' when a duplicate's original job has already expired)
--    or  {'invalid_argument' | 'payload_too_large' | 'invalid_payload', message}: nothing written.

--@include lib/clock.lua
--@include lib/args.lua
--@include lib/config.lua
--@include lib/ready.lua
--@include lib/wake.lua
--@include lib/events.lua

local bad_keys = keys_problem(6, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, prios_key, scheduled_key, totals_key, seq_key, wake_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local prefix, queue = ARGV[1], ARGV[2]
local FIELDS = 10

local n, err = int_arg(ARGV[3], 'job count', 1, BATCH_LIMIT)
if not n then return {'invalid_argument', err} end
if #ARGV ~= 3 + FIELDS * n then
  return {'invalid_argument', string.format('expected %d job fields, got %d', FIELDS * n, #ARGV - 3)}
end

local now = now_ms()
local config = read_config(meta_key, {'max_attempts', 'idempotency_ttl_ms', 'max_payload_bytes',
                                      'paused'})
local paused = config.paused

-- Check every job before writing anything.
local jobs, failure, refusal = {}, nil, nil
local function check(value, message, status)
  if value == nil and failure == nil then failure, refusal = message, status end
  return value
end
for i = 1, n do
  local a = 3 + FIELDS * (i - 1)
  local job = {}
  job.payload = check(json_arg(ARGV[a + 1], 'payload', config.max_payload_bytes))
  job.type = check(str_arg(ARGV[a + 2], 'type', MAX_TYPE_BYTES, true))
  job.priority = check(int_arg(ARGV[a + 3], 'priority', MIN_PRIORITY, MAX_PRIORITY, 0))
  local delay = check(int_arg(ARGV[a + 4], 'delay_ms', 0, MAX_DURATION_MS, 0))
  local run_at = check(int_arg(ARGV[a + 5], 'run_at', 0, now + MAX_DURATION_MS, -1))
  job.max_attempts = check(int_arg(ARGV[a + 6], 'max_attempts', 1, MAX_ATTEMPTS,
    config.max_attempts))
  job.idempotency_key = check(str_arg(ARGV[a + 7], 'idempotency_key',
    MAX_IDEMPOTENCY_KEY_BYTES, true))
  job.timeout_ms = check(int_arg(ARGV[a + 8], 'timeout_ms', 1, MAX_DURATION_MS, -1))
  job.backoff_base_ms = check(int_arg(ARGV[a + 9], 'backoff_base_ms', 0, MAX_DURATION_MS, -1))
  job.backoff_cap_ms = check(int_arg(ARGV[a + 10], 'backoff_cap_ms', 0, MAX_DURATION_MS, -1))
  if failure == nil and ARGV[a + 4] ~= '' and ARGV[a + 5] ~= '' then
    failure = 'give delay_ms or run_at, not both'
  end
  if failure ~= nil then
    if n > 1 then failure = string.format('job %d: %s', i, failure) end
    return {refusal or 'invalid_argument', failure}
  end
  job.due = (run_at >= 0) and run_at or (now + delay)
  jobs[i] = job
end

-- writes below
local reply = {'ok'}
local ready_by_priority, scheduled_ids = {}, {}
local created = 0
local seen_in_batch = {}
local now_str = ms_str(now)
-- Ids are <epoch ms><6-digit sequence>: time-ordered, unique per queue. One INCRBY reserves a
-- number for every job of the call; the EXISTS loop guards against a clock that went back onto
-- an id still in use.
local seq = redis.call('INCRBY', seq_key, n) - n
local function next_id()
  while true do
    seq = seq + 1
    local id = string.format('%d%06d', now, seq % ID_SEQUENCE_MODULUS)
    if redis.call('EXISTS', prefix .. 'job:' .. id) == 0 then return id end
  end
end
for _, job in ipairs(jobs) do
  local idem_key = job.idempotency_key ~= '' and (prefix .. 'idem:' .. job.idempotency_key) or nil
  local original = idem_key and (seen_in_batch[idem_key] or redis.call('GET', idem_key)) or nil
  if original then
    local state = redis.call('HGET', prefix .. 'job:' .. original, 's') or ''
    reply[#reply + 1] = original
    reply[#reply + 1] = state
    reply[#reply + 1] = 1
  else
    local id = next_id()
    local state = (job.due > now) and 'scheduled' or 'ready'
    local fields = {'p', job.payload, 's', state, 'c', now_str, 'ma', job.max_attempts}
    if job.type ~= '' then fields[#fields + 1] = 't'; fields[#fields + 1] = job.type end
    if job.priority ~= 0 then fields[#fields + 1] = 'pr'; fields[#fields + 1] = job.priority end
    if job.due > now then fields[#fields + 1] = 'r'; fields[#fields + 1] = ms_str(job.due) end
    if job.idempotency_key ~= '' then
      fields[#fields + 1] = 'ik'; fields[#fields + 1] = job.idempotency_key
    end
    if job.timeout_ms >= 0 then fields[#fields + 1] = 'to'; fields[#fields + 1] = job.timeout_ms end
    if job.backoff_base_ms >= 0 then
      fields[#fields + 1] = 'bb'; fields[#fields + 1] = job.backoff_base_ms
    end
    if job.backoff_cap_ms >= 0 then
      fields[#fields + 1] = 'bc'; fields[#fields + 1] = job.backoff_cap_ms
    end
    redis.call('HSET', prefix .. 'job:' .. id, unpack(fields))
    if state == 'scheduled' then
      redis.call('ZADD', scheduled_key, job.due, id)
      scheduled_ids[#scheduled_ids + 1] = id
    else
      local ids = ready_by_priority[job.priority]
      if not ids then ids = {}; ready_by_priority[job.priority] = ids end
      ids[#ids + 1] = id
    end
    if idem_key then
      redis.call('SET', idem_key, id, 'PX', config.idempotency_ttl_ms)
      seen_in_batch[idem_key] = id
    end
    created = created + 1
    reply[#reply + 1] = id
    reply[#reply + 1] = state
    reply[#reply + 1] = 0
  end
end

-- One push per priority, in enqueue order (FIFO within the priority).
local ready_ids = {}
for priority, ids in pairs(ready_by_priority) do
  push_ready_many(prefix, prios_key, ids, priority)
  for _, id in ipairs(ids) do ready_ids[#ready_ids + 1] = id end
end
if created > 0 then redis.call('HINCRBY', totals_key, 'enqueued', created) end
if #ready_ids > 0 and not paused then wake(wake_key) end
emit(prefix, queue, 'ready', ready_ids)
emit(prefix, queue, 'scheduled', scheduled_ids)
return reply
