-- lib/jobs.lua: making jobs, shared by enqueue.lua (jobs a caller sends) and fire_schedule.lua
-- (jobs a schedule's template makes), so that a job is checked and written one way only.
--
-- A job is 12 fields ('' = absent): payload (JSON text), type, priority, delay_ms, run_at,
-- max_attempts, idempotency_key, timeout_ms, backoff_base_ms, backoff_cap_ms, group (fair
-- queues, lib/groups.lua; stored as 'g' only when given), trace (a W3C traceparent, checked by
-- relayq/tracing.py; stored as 'tp' only when given). A template saved with 11 (no group) reads
-- its trace '' as no group.

--@include lib/clock.lua
--@include lib/args.lua
--@include lib/ready.lua
--@include lib/wake.lua
--@include lib/events.lua
--@include lib/groups.lua

local job_fields = 12

-- The settings of the queue that making jobs reads, from its meta hash, in one HMGET.
local function job_settings(meta_key)
  local meta = redis.call('HMGET', meta_key, 'max_attempts', 'idempotency_ttl_ms',
                          'max_payload_bytes', 'paused', 'id_ms', 'id_seq')
  return {default_attempts = tonumber(meta[1]) or SETTING_DEFAULTS.max_attempts,
          idempotency_ttl_ms = tonumber(meta[2]) or SETTING_DEFAULTS.idempotency_ttl_ms,
          max_payload_bytes = tonumber(meta[3]) or SETTING_DEFAULTS.max_payload_bytes,
          paused = meta[4] == '1', id_ms = tonumber(meta[5]), id_seq = tonumber(meta[6])}
end

-- The checked job of the 12 fields f[a + 1 .. a + 12], or nil, a message and a refusal status
-- (nil for invalid_argument).
local function check_job(f, a, now, settings)
  local payload, type, priority, delay, run_at, max_attempts, idempotency_key, timeout_ms,
    backoff_base_ms, backoff_cap_ms, group, trace
  local e, status
  payload, e, status = json_arg(f[a + 1], 'payload', settings.max_payload_bytes)
  if e == nil then type, e = str_arg(f[a + 2], 'type', MAX_TYPE_BYTES, true) end
  if e == nil then priority, e = int_arg(f[a + 3], 'priority', MIN_PRIORITY, MAX_PRIORITY, 0) end
  if e == nil then delay, e = int_arg(f[a + 4], 'delay_ms', 0, MAX_DURATION_MS, 0) end
  if e == nil then run_at, e = int_arg(f[a + 5], 'run_at', 0, now + MAX_DURATION_MS, -1) end
  if e == nil then
    max_attempts, e = int_arg(f[a + 6], 'max_attempts', 1, MAX_ATTEMPTS,
                              settings.default_attempts)
  end
  if e == nil then
    idempotency_key, e = str_arg(f[a + 7], 'idempotency_key', MAX_IDEMPOTENCY_KEY_BYTES, true)
  end
  if e == nil then timeout_ms, e = int_arg(f[a + 8], 'timeout_ms', 1, MAX_DURATION_MS, -1) end
  if e == nil then
    backoff_base_ms, e = int_arg(f[a + 9], 'backoff_base_ms', 0, MAX_DURATION_MS, -1)
  end
  if e == nil then
    backoff_cap_ms, e = int_arg(f[a + 10], 'backoff_cap_ms', 0, MAX_DURATION_MS, -1)
  end
  if e == nil then group, e = group_arg(f[a + 11], true) end
  if e == nil then trace, e = str_arg(f[a + 12], 'trace', TRACEPARENT_BYTES, true) end
  if e == nil and f[a + 4] ~= '' and f[a + 5] ~= '' then
    e = 'give delay_ms or run_at, not both'
  end
  if e ~= nil then return nil, e, status end
  return {payload = payload, type = type, priority = priority,
          due = (run_at >= 0) and run_at or (now + delay), max_attempts = max_attempts,
          idempotency_key = idempotency_key, timeout_ms = timeout_ms,
          backoff_base_ms = backoff_base_ms, backoff_cap_ms = backoff_cap_ms, group = group,
          trace = trace}
end

-- Writes the checked `jobs` (each may carry `extra`, more hash fields as a flat list, and
-- `waiting`: made `waiting`, indexed in relayq:{<q>}:waiting, for enqueue_deps.lua) and
-- appends id, state, duplicate (0|1) per job to `reply`. `k` holds the keys meta, prios,
-- scheduled, totals, seq and wake; `settings` is job_settings(k.meta).
local function create_jobs(prefix, queue, k, jobs, now, settings, reply)
  local n = #jobs
  local ready_by_priority, scheduled_ids, waiting_ids = {}, {}, {}
  local grouped_ready, group_order = {}, {}
  local created = 0
  local seen_in_batch = {}
  local now_str = ms_str(now)
  -- Ids are <epoch ms><6-digit sequence>: time-ordered, unique per queue. One INCRBY reserves a
  -- number for every job of the call. Two ids of one millisecond differ when their sequence
  -- numbers are less than ID_SEQUENCE_MODULUS apart; the meta fields id_ms (the newest
  -- millisecond that ids were made in) and id_seq (the sequence just before that millisecond's
  -- first id; '' when unknown: restored ids may hold that millisecond) tell when that is
  -- certain. Only otherwise (the clock went back, a restore, the first call after an upgrade)
  -- is each id checked with EXISTS against the ids still in use.
  local last_seq = redis.call('INCRBY', k.seq, n)
  local seq = last_seq - n
  local id_ms, id_seq = settings.id_ms, settings.id_seq
  local certain = id_ms ~= nil and (now > id_ms or
    (now == id_ms and id_seq ~= nil and last_seq - id_seq <= ID_SEQUENCE_MODULUS))
  if id_ms == nil or now > id_ms then
    redis.call('HSET', k.meta, 'id_ms', now_str, 'id_seq', id_ms == nil and '' or seq)
  end
  local function next_id()
    while true do
      seq = seq + 1
      local id = string.format('%d%06d', now, seq % ID_SEQUENCE_MODULUS)
      if certain or redis.call('EXISTS', prefix .. 'job:' .. id) == 0 then return id end
    end
  end
  for _, job in ipairs(jobs) do
    local idem_key = job.idempotency_key ~= '' and (prefix .. 'idem:' .. job.idempotency_key)
      or nil
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
      local state = job.waiting and 'waiting' or (scheduled and 'scheduled' or 'ready')
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
      if job.group ~= '' then fields[#fields + 1] = 'g'; fields[#fields + 1] = job.group end
      if job.extra then
        for _, value in ipairs(job.extra) do fields[#fields + 1] = value end
      end
      redis.call('HSET', job_key, unpack(fields))
      if job.waiting then -- workflows (lib/deps.lua): its parents settle it later
        redis.call('ZADD', prefix .. 'waiting', now, id)
        waiting_ids[#waiting_ids + 1] = id
      elseif scheduled then
        redis.call('ZADD', k.scheduled, job.due, id)
        scheduled_ids[#scheduled_ids + 1] = id
      else
        local by = ready_by_priority
        if job.group ~= '' then -- fair queues: the group's own lists (lib/groups.lua)
          by = grouped_ready[job.group]
          if not by then
            by = {}
            grouped_ready[job.group] = by
            group_order[#group_order + 1] = job.group
          end
        end
        local ids = by[job.priority]
        if not ids then ids = {}; by[job.priority] = ids end
        ids[#ids + 1] = id
      end
      if idem_key then
        redis.call('SET', idem_key, id, 'PX', settings.idempotency_ttl_ms)
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
    push_ready_many(prefix, k.prios, ids, priority)
    for _, id in ipairs(ids) do ready_ids[#ready_ids + 1] = id end
  end
  for _, group in ipairs(group_order) do -- the groups enter the ring in the order first seen
    for priority, ids in pairs(grouped_ready[group]) do
      fair().push_many(prefix, group, ids, priority)
      for _, id in ipairs(ids) do ready_ids[#ready_ids + 1] = id end
    end
  end
  if created > 0 then redis.call('HINCRBY', k.totals, 'enqueued', created) end
  -- A token whenever jobs became ready, not only when the ready set was empty before: a token
  -- taken by a worker that then died before it claimed is made good by the next enqueue, not
  -- by the idle workers' 5 s block (the LLEN costs ~1.5% of this script, measured).
  if #ready_ids > 0 and not settings.paused then wake(k.wake) end
  emit(prefix, queue, 'ready', ready_ids)
  emit(prefix, queue, 'scheduled', scheduled_ids)
  emit(prefix, queue, 'waiting', waiting_ids)
  return reply
end
