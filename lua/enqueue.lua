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
-- ARGV[4 + 11*(i-1) ...] per job, 11 fields ('' = absent):
--   payload (JSON text), type, priority (MIN_PRIORITY..MAX_PRIORITY), delay_ms (>= 0),
--   run_at (epoch ms, at most MAX_DURATION_MS from now), max_attempts (1..MAX_ATTEMPTS),
--   idempotency_key, timeout_ms, backoff_base_ms, backoff_cap_ms,
--   trace (a W3C traceparent, checked by relayq/tracing.py; stored as 'tp' only when given)
--   (the limits are relayq/limits.py's, prepended by relayq/scripts.py)
--
-- Reply: {'ok', id_1, state_1, duplicate_1, ..., id_N, state_N, duplicate_N}
--        (state is '' when a duplicate's original job has already expired)
--    or  {'invalid_argument' | 'payload_too_large' | 'invalid_payload', message}: nothing written.

--@include lib/clock.lua
--@include lib/args.lua
--@include lib/ready.lua
--@include lib/wake.lua
--@include lib/events.lua

local bad_keys = keys_problem(6, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, prios_key, scheduled_key, totals_key, seq_key, wake_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local prefix, queue = ARGV[1], ARGV[2]
local FIELDS = 11

local n, err = int_arg(ARGV[3], 'job count', 1, BATCH_LIMIT)
if not n then return {'invalid_argument', err} end
if #ARGV ~= 3 + FIELDS * n then
  return {'invalid_argument', string.format('expected %d job fields, got %d', FIELDS * n, #ARGV - 3)}
end

local now = now_ms()
local meta = redis.call('HMGET', meta_key, 'max_attempts', 'idempotency_ttl_ms',
                        'max_payload_bytes', 'paused', 'id_ms', 'id_seq')
local default_attempts = tonumber(meta[1]) or SETTING_DEFAULTS.max_attempts
local idempotency_ttl_ms = tonumber(meta[2]) or SETTING_DEFAULTS.idempotency_ttl_ms
local max_payload_bytes = tonumber(meta[3]) or SETTING_DEFAULTS.max_payload_bytes
local paused = meta[4] == '1'

-- Check every job before writing anything.
local jobs = {}
for i = 1, n do
  local a = 3 + FIELDS * (i - 1)
  local payload, type, priority, delay, run_at, max_attempts, idempotency_key, timeout_ms,
    backoff_base_ms, backoff_cap_ms, trace
  local e, status
  payload, e, status = json_arg(ARGV[a + 1], 'payload', max_payload_bytes)
  if e == nil then type, e = str_arg(ARGV[a + 2], 'type', MAX_TYPE_BYTES, true) end
  if e == nil then priority, e = int_arg(ARGV[a + 3], 'priority', MIN_PRIORITY, MAX_PRIORITY, 0) end
  if e == nil then delay, e = int_arg(ARGV[a + 4], 'delay_ms', 0, MAX_DURATION_MS, 0) end
  if e == nil then run_at, e = int_arg(ARGV[a + 5], 'run_at', 0, now + MAX_DURATION_MS, -1) end
  if e == nil then
    max_attempts, e = int_arg(ARGV[a + 6], 'max_attempts', 1, MAX_ATTEMPTS, default_attempts)
  end
  if e == nil then
    idempotency_key, e = str_arg(ARGV[a + 7], 'idempotency_key', MAX_IDEMPOTENCY_KEY_BYTES, true)
  end
  if e == nil then timeout_ms, e = int_arg(ARGV[a + 8], 'timeout_ms', 1, MAX_DURATION_MS, -1) end
  if e == nil then
    backoff_base_ms, e = int_arg(ARGV[a + 9], 'backoff_base_ms', 0, MAX_DURATION_MS, -1)
  end
  if e == nil then
    backoff_cap_ms, e = int_arg(ARGV[a + 10], 'backoff_cap_ms', 0, MAX_DURATION_MS, -1)
  end
  if e == nil then trace, e = str_arg(ARGV[a + 11], 'trace', TRACEPARENT_BYTES, true) end
  if e == nil and ARGV[a + 4] ~= '' and ARGV[a + 5] ~= '' then
    e = 'give delay_ms or run_at, not both'
  end
  if e ~= nil then
    if n > 1 then e = string.format('job %d: %s', i, e) end
    return {status or 'invalid_argument', e}
  end
  jobs[i] = {payload = payload, type = type, priority = priority,
             due = (run_at >= 0) and run_at or (now + delay), max_attempts = max_attempts,
             idempotency_key = idempotency_key, timeout_ms = timeout_ms,
             backoff_base_ms = backoff_base_ms, backoff_cap_ms = backoff_cap_ms, trace = trace}
end

-- writes below
local reply = {'ok'}
local ready_by_priority, scheduled_ids = {}, {}
local created = 0
local seen_in_batch = {}
local now_str = ms_str(now)
-- Ids are <epoch ms><6-digit sequence>: time-ordered, unique per queue. One INCRBY reserves a
-- number for every job of the call. Two ids of one millisecond differ when their sequence
-- numbers are less than ID_SEQUENCE_MODULUS apart; the meta fields id_ms (the newest
-- millisecond that ids were made in) and id_seq (the sequence just before that millisecond's
-- first id; '' when unknown: restored ids may hold that millisecond) tell when that is certain.
-- Only otherwise (the clock went back, a restore, the first call after an upgrade) is each id
-- checked with EXISTS against the ids still in use.
local last_seq = redis.call('INCRBY', seq_key, n)
local seq = last_seq - n
local id_ms, id_seq = tonumber(meta[5]), tonumber(meta[6])
local certain = id_ms ~= nil and (now > id_ms or
  (now == id_ms and id_seq ~= nil and last_seq - id_seq <= ID_SEQUENCE_MODULUS))
if id_ms == nil or now > id_ms then
  redis.call('HSET', meta_key, 'id_ms', now_str, 'id_seq', id_ms == nil and '' or seq)
end
local function next_id()
  while true do
    seq = seq + 1
    local id = string.format('%d%06d', now, seq % ID_SEQUENCE_MODULUS)
    if certain or redis.call('EXISTS', prefix .. 'job:' .. id) == 0 then return id end
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
    local job_key = prefix .. 'job:' .. id
    local scheduled = job.due > now
    local state = scheduled and 'scheduled' or 'ready'
    local fields = {'p', job.payload, 's', state, 'c', now_str, 'ma', job.max_attempts}
    if job.type ~= '' then fields[#fields + 1] = 't'; fields[#fields + 1] = job.type end
    if job.priority ~= 0 then fields[#fields + 1] = 'pr'; fields[#fields + 1] = job.priority end
    if scheduled then fields[#fields + 1] = 'r'; fields[#fields + 1] = ms_str(job.due) end
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
    if job.trace ~= '' then fields[#fields + 1] = 'tp'; fields[#fields + 1] = job.trace end
    redis.call('HSET', job_key, unpack(fields))
    if scheduled then
      redis.call('ZADD', scheduled_key, job.due, id)
      scheduled_ids[#scheduled_ids + 1] = id
    else
      local ids = ready_by_priority[job.priority]
      if not ids then ids = {}; ready_by_priority[job.priority] = ids end
      ids[#ids + 1] = id
    end
    if idem_key then
      redis.call('SET', idem_key, id, 'PX', idempotency_ttl_ms)
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
-- A token whenever jobs became ready, not only when the ready set was empty before: a token
-- taken by a worker that then died before it claimed is made good by the next enqueue, not
-- by the idle workers' 5 s block (the LLEN costs ~1.5% of this script, measured).
if #ready_ids > 0 and not paused then wake(wake_key) end
emit(prefix, queue, 'ready', ready_ids)
emit(prefix, queue, 'scheduled', scheduled_ids)
return reply
