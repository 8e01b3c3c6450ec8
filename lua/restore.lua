-- restore.lua: insert jobs from a snapshot (relayq restore), each only where its id is absent.
--
-- Restoring is idempotent: a job whose hash exists is left alone ('present'; 'conflict' when
-- the existing job has another creation time, i.e. the id was reused by a different job). Jobs
-- come back in the state they had, except that a job that was running comes back ready (its
-- worker is gone; the attempt it had started stays counted). Ready jobs are appended to the tail
-- of their priority list in the order given; scheduled jobs keep their due time; dead,
-- succeeded and cancelled jobs keep their finish time and expire when their retention (the
-- queue's setting, counted from that finish time) ends: one whose retention has already ended
-- is not restored ('expired'). An idempotency key comes back with its job when its TTL (counted
-- from the job's creation, never longer than the queue's idempotency TTL) has not run out and the
-- key is free: an existing job or key is never overwritten. Payload and result are held to the
-- queue's max_payload_bytes, as enqueue holds them. The id sequence is raised to the snapshot's,
-- so that ids handed out later do not repeat restored ones. A job's group (fair queues) comes
-- back with it, a ready one in its group's lists.
--
-- A job of a workflow keeps its parents (depends_on, on_parent_failure) and the results of the
-- parents that had already succeeded. A waiting job comes back waiting for the parents whose
-- end it had not heard of (waiting_for), and enters relayq:{<q>}:linking: the movers
-- (relayq/workflows.py `relink`) link it to each of them again, in whatever queue, and apply
-- the end of those that have ended meanwhile, so it is released or cancelled as it would have
-- been. Restore the queues of its parents before it or with it: a parent that does not exist
-- when it is linked cancels it (unless on_parent_failure is 'run'), as a missing parent does at
-- enqueue. A waiting job with nothing left to wait for comes back ready (or scheduled). Links
-- from parents to their children are not restored as such: the children make them again.
--
-- KEYS[1] relayq:{<q>}:meta       HASH  queue settings (retention, idempotency TTL, payload
--                                       limit, paused)
-- KEYS[2] relayq:{<q>}:prios      ZSET  priorities with a non-empty ready list
-- KEYS[3] relayq:{<q>}:scheduled  ZSET  job id by due time (ms)
-- KEYS[4] relayq:{<q>}:dead       ZSET  job id by time of death (ms)
-- KEYS[5] relayq:{<q>}:succeeded  ZSET  job id by finish time (ms)
-- KEYS[6] relayq:{<q>}:seq        STRING id sequence
-- KEYS[7] relayq:{<q>}:wake       LIST  wake-up token for idle workers
-- ARGV[1] key prefix relayq:{<q>}:  (job, ready and idem keys are built from it)
-- ARGV[2] queue name (for events)
-- ARGV[3] lowest id sequence to leave behind (integer >= 0; '' = leave the sequence alone)
-- ARGV[4] number of jobs N (1..BATCH_LIMIT)
-- ARGV[5 + 23*(i-1) ...] per job, 23 fields ('' = absent):
--   id (digits), state (ready|scheduled|running|succeeded|dead|cancelled|waiting), priority
--   (MIN_PRIORITY..MAX_PRIORITY), payload (JSON text, at most max_payload_bytes), type, attempts (>= 0), max_attempts
--   (1..MAX_ATTEMPTS), created_at (epoch ms),
--   run_at (epoch ms; required when scheduled), started_at (epoch ms), finished_at (epoch ms;
--   required when succeeded, dead or cancelled), result (JSON text, at most
--   max_payload_bytes), last_error,
--   idempotency_key, timeout_ms, backoff_base_ms, backoff_cap_ms, worker_id (the worker that
--   ran it last; dropped for a running job, which comes back ready), group,
--   depends_on (parents' full ids, comma-separated, 1..MAX_PARENTS; required when waiting),
--   on_parent_failure ('' | 'cancel' | 'run'), parent_results (a JSON object: parent full id ->
--   that parent's result as JSON text, a string), waiting_for (full ids among depends_on,
--   comma-separated: the parents a waiting job still waits for)
--
-- Reply: {'ok', restored, status_1, ..., status_N}  status: 'ok' | 'present' | 'conflict' |
--        'expired'
--    or  {'invalid_argument' | 'payload_too_large' | 'invalid_payload', message}: nothing written.

--@include lib/clock.lua
--@include lib/args.lua
--@include lib/config.lua
--@include lib/ready.lua
--@include lib/wake.lua
--@include lib/events.lua
--@include lib/deps.lua

local bad_keys = keys_problem(7, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, prios_key, scheduled_key, dead_key, succeeded_key, seq_key, wake_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local prefix, queue = ARGV[1], ARGV[2]
local FIELDS = 23
local STATES = {ready = true, scheduled = true, running = true, succeeded = true, dead = true,
                cancelled = true, waiting = true}
local FINISHED = {succeeded = true, dead = true, cancelled = true}

local min_seq, err = int_arg(ARGV[3], 'sequence', 0, MAX_SEQUENCE, -1)
if not min_seq then return {'invalid_argument', err} end
local n
n, err = int_arg(ARGV[4], 'job count', 1, BATCH_LIMIT)
if not n then return {'invalid_argument', err} end
if #ARGV ~= 4 + FIELDS * n then
  return {'invalid_argument', string.format('expected %d job fields, got %d', FIELDS * n, #ARGV - 4)}
end

local config = read_config(meta_key, {'succeeded_ttl_ms', 'dead_ttl_ms', 'idempotency_ttl_ms',
                                      'max_payload_bytes', 'paused', 'id_ms'})
local paused = config.paused
local now = now_ms()

-- Full job ids, comma-separated ('' = none): a list and a set of them, or nil and a message.
local function id_list(text, name)
  local ids, set = {}, {}
  if text == '' then return ids, set end
  for token in string.gmatch(text, '[^,]+') do
    local pq, pid = deps_lib().split_job_id(token)
    if not pq or #pq > MAX_QUEUE_NAME_LENGTH or #pid > MAX_JOB_ID_DIGITS then
      return nil, name .. ' holds an invalid job id ' .. string.format('%q', string.sub(token, 1, 90))
    end
    if not set[token] then ids[#ids + 1] = token; set[token] = true end
    if #ids > MAX_PARENTS then return nil, name .. ' holds more than ' .. MAX_PARENTS .. ' ids' end
  end
  if #ids == 0 then return nil, name .. ' is malformed' end
  return ids, set
end

-- The parents' results: a list of full id, JSON text pairs, or nil and a message.
local function parent_results(text, parents)
  if text == '' then return {}, 0 end
  local ok, decoded = pcall(cjson.decode, text)
  if not ok or type(decoded) ~= 'table' then return nil, 'parent_results is not a JSON object' end
  local pairs_, bytes = {}, 0
  for parent, result in pairs(decoded) do
    if type(parent) ~= 'string' or not parents[parent] then
      return nil, 'parent_results names a job that is not a parent'
    end
    if type(result) ~= 'string' or not pcall(cjson.decode, result) then
      return nil, 'parent_results holds a result that is not JSON text'
    end
    bytes = bytes + #result
    pairs_[#pairs_ + 1] = {parent, result}
  end
  if bytes > config.max_payload_bytes then
    return nil, 'parent_results are over the payload limit of ' .. config.max_payload_bytes
  end
  return pairs_, bytes
end

local function json_or_empty(value, name)
  if value == '' then return '' end
  return json_arg(value, name, config.max_payload_bytes)
end

-- Check every job before writing anything.
local jobs = {}
for i = 1, n do
  local a = 4 + FIELDS * (i - 1)
  local job, e, refusal = {}, nil, nil
  local function check(value, message, status)
    if value == nil and e == nil then e, refusal = message, status end
    return value
  end
  job.id = ARGV[a + 1]
  if not (string.match(job.id, '^%d+$') and #job.id <= MAX_JOB_ID_DIGITS) then
    e = 'id must be 1-' .. MAX_JOB_ID_DIGITS .. ' digits'
  end
  job.state = ARGV[a + 2]
  if e == nil and not STATES[job.state] then e = 'unknown state ' .. string.sub(job.state, 1, 40) end
  job.priority = check(int_arg(ARGV[a + 3], 'priority', MIN_PRIORITY, MAX_PRIORITY, 0))
  job.payload = check(json_arg(ARGV[a + 4], 'payload', config.max_payload_bytes))
  job.type = check(str_arg(ARGV[a + 5], 'type', MAX_TYPE_BYTES, true))
  job.attempts = check(int_arg(ARGV[a + 6], 'attempts', 0, MAX_RESTORED_ATTEMPTS))
  job.max_attempts = check(int_arg(ARGV[a + 7], 'max_attempts', 1, MAX_ATTEMPTS))
  job.created = check(int_arg(ARGV[a + 8], 'created_at', 0, MAX_TIME_MS))
  job.run_at = check(int_arg(ARGV[a + 9], 'run_at', 0, MAX_TIME_MS, -1))
  job.started = check(int_arg(ARGV[a + 10], 'started_at', 0, MAX_TIME_MS, -1))
  job.finished = check(int_arg(ARGV[a + 11], 'finished_at', 0, MAX_TIME_MS, -1))
  job.result = check(json_or_empty(ARGV[a + 12], 'result'))
  job.last_error = check(str_arg(ARGV[a + 13], 'last_error', MAX_ERROR_BYTES, true))
  job.idempotency_key = check(str_arg(ARGV[a + 14], 'idempotency_key',
    MAX_IDEMPOTENCY_KEY_BYTES, true))
  job.timeout_ms = check(int_arg(ARGV[a + 15], 'timeout_ms', 1, MAX_DURATION_MS, -1))
  job.backoff_base_ms = check(int_arg(ARGV[a + 16], 'backoff_base_ms', 0, MAX_DURATION_MS, -1))
  job.backoff_cap_ms = check(int_arg(ARGV[a + 17], 'backoff_cap_ms', 0, MAX_DURATION_MS, -1))
  job.worker_id = check(str_arg(ARGV[a + 18], 'worker_id', MAX_WORKER_ID_BYTES, true))
  local w = a + 18 -- the fields that fair queues and workflows added
  job.group = check(group_arg(ARGV[w + 1], true))
  local parents, parent_set, waiting_for, why
  if e == nil then
    parents, parent_set = id_list(ARGV[w + 2], 'depends_on')
    if not parents then e = parent_set end
  end
  job.on_parent_failure = ARGV[w + 3]
  if e == nil and job.on_parent_failure ~= '' and job.on_parent_failure ~= 'cancel'
      and job.on_parent_failure ~= 'run' then
    e = 'on_parent_failure must be cancel or run'
  end
  if e == nil then
    job.parent_results, job.results_bytes = parent_results(ARGV[w + 4], parent_set)
    if not job.parent_results then e = job.results_bytes end
  end
  if e == nil then
    waiting_for, why = id_list(ARGV[w + 5], 'waiting_for')
    if not waiting_for then e = why end
  end
  if e == nil then
    for _, parent in ipairs(waiting_for) do
      if not parent_set[parent] then e = 'waiting_for names a job that is not a parent' end
    end
    if job.state == 'waiting' and #parents == 0 then e = 'a waiting job needs depends_on' end
    if job.state ~= 'waiting' and #waiting_for > 0 then
      e = 'only a waiting job waits for parents'
    end
  end
  job.parents, job.waiting_for = parents, waiting_for
  if e == nil and job.state == 'scheduled' and job.run_at < 0 then
    e = 'a scheduled job needs run_at'
  end
  if e == nil and FINISHED[job.state] and job.finished < 0 then
    e = 'a ' .. job.state .. ' job needs finished_at'
  end
  if e ~= nil then
    return {refusal or 'invalid_argument',
            string.format('job %d (%s): %s', i, string.sub(job.id, 1, 24), e)}
  end
  jobs[i] = job
end

-- writes below
local reply = {'ok', 0}
local newest_ms = -1 -- the newest millisecond of a restored id
local restored = {ready = {}, scheduled = {}, succeeded = {}, dead = {}, cancelled = {},
                  waiting = {}}
for _, job in ipairs(jobs) do
  local job_key = prefix .. 'job:' .. job.id
  local state = job.state == 'running' and 'ready' or job.state
  if state == 'waiting' and #job.waiting_for == 0 then -- every parent's end had come
    state = (job.run_at > now) and 'scheduled' or 'ready'
  end
  local expires_at = -1
  if state == 'dead' then expires_at = job.finished + config.dead_ttl_ms
  elseif FINISHED[state] then expires_at = job.finished + config.succeeded_ttl_ms end
  local status = 'ok'
  if redis.call('EXISTS', job_key) == 1 then
    local created = tonumber(redis.call('HGET', job_key, 'c'))
    status = (created == job.created) and 'present' or 'conflict'
  elseif expires_at >= 0 and expires_at <= now then
    status = 'expired'
  else
    local fields = {'p', job.payload, 's', state, 'c', ms_str(job.created), 'a', job.attempts,
                    'ma', job.max_attempts}
    local function put(name, value) fields[#fields + 1] = name; fields[#fields + 1] = value end
    if job.type ~= '' then put('t', job.type) end
    if job.priority ~= 0 then put('pr', job.priority) end
    if job.run_at >= 0 and job.run_at ~= job.created then put('r', ms_str(job.run_at)) end
    if job.started >= 0 then put('st', ms_str(job.started)) end
    if job.finished >= 0 and FINISHED[state] then put('f', ms_str(job.finished)) end
    if job.result ~= '' then put('res', job.result) end
    if job.last_error ~= '' then put('err', job.last_error) end
    if job.idempotency_key ~= '' then put('ik', job.idempotency_key) end
    if job.timeout_ms >= 0 then put('to', job.timeout_ms) end
    if job.backoff_base_ms >= 0 then put('bb', job.backoff_base_ms) end
    if job.backoff_cap_ms >= 0 then put('bc', job.backoff_cap_ms) end
    if job.worker_id ~= '' and job.state ~= 'running' then put('w', job.worker_id) end
    if job.group ~= '' then put('g', job.group) end
    if #job.parents > 0 then
      put('dp', table.concat(job.parents, ','))
      if job.on_parent_failure == 'run' then put('opf', 'run') end
      for _, pr in ipairs(job.parent_results) do put('R:' .. pr[1], pr[2]) end
      if job.results_bytes > 0 then put('rb', job.results_bytes) end
    end
    redis.call('HSET', job_key, unpack(fields))
    if state == 'waiting' then -- linked again to its parents by the movers (relink)
      local d = deps_lib()
      redis.call('ZADD', prefix .. 'waiting', job.created, job.id)
      redis.call('SADD', d.deps_key(prefix, job.id), unpack(job.waiting_for))
      redis.call('ZADD', prefix .. 'linking', 0, job.id) -- 0: at the movers' next round
    elseif state == 'ready' then
      push_ready(prefix, prios_key, job.id, job.priority, false, job.group)
    elseif state == 'scheduled' then
      redis.call('ZADD', scheduled_key, job.run_at, job.id)
    elseif state == 'dead' then
      redis.call('ZADD', dead_key, job.finished, job.id)
    elseif state == 'succeeded' then
      redis.call('ZADD', succeeded_key, job.finished, job.id)
    end
    if expires_at >= 0 then redis.call('PEXPIREAT', job_key, expires_at) end
    if job.idempotency_key ~= '' then
      -- counted from creation, and never longer than the TTL: a creation time in the future
      -- does not hold a key for longer than enqueue would
      local idem_ttl = math.min(job.created + config.idempotency_ttl_ms - now,
                                config.idempotency_ttl_ms)
      if idem_ttl > 0 then
        redis.call('SET', prefix .. 'idem:' .. job.idempotency_key, job.id, 'PX', idem_ttl, 'NX')
      end
    end
    local ids = restored[state]
    ids[#ids + 1] = job.id
    reply[2] = reply[2] + 1
    newest_ms = math.max(newest_ms, tonumber(string.sub(job.id, 1, -7)) or 0)
  end
  reply[#reply + 1] = status
end

if min_seq >= 0 and (tonumber(redis.call('GET', seq_key)) or 0) < min_seq then
  redis.call('SET', seq_key, min_seq)
end
-- Enqueue then checks its new ids against those in use while it makes ids of a millisecond
-- that restored ids may hold (lua/enqueue.lua: id_ms, id_seq).
if newest_ms >= 0 and (config.id_ms == nil or newest_ms >= config.id_ms) then
  redis.call('HSET', meta_key, 'id_ms', ms_str(newest_ms), 'id_seq', '')
end
if #restored.ready > 0 and not paused then wake(wake_key) end
for state, ids in pairs(restored) do emit(prefix, queue, state, ids) end
return reply
