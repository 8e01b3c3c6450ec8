-- enqueue_deps.lua: create jobs of which some depend on other jobs (workflows,
-- docs/workflows.md), all or nothing on validation. The jobs without parents are made exactly
-- as enqueue.lua makes them; a job with parents is `waiting` (relayq:{<q>}:waiting) until the
-- fact of each parent's end has come (lib/deps.lua). Parents in this queue are settled here and
-- now: a succeeded one counts at once (its result is copied), a dead or cancelled one cancels
-- the job (unless on_parent_failure is 'run'), an unfinished one lists the job among its
-- children. Parents in other queues (other Cluster slots) cannot be read here: they are kept in
-- deps:<id>, and the job is put in relayq:{<q>}:linking until the caller has linked it to each
-- of them (link.lua in the parent's queue, then deps_apply.lua here with what it answered).
-- An idempotency key already used answers the original job, whatever its parents.
--
-- KEYS[1] relayq:{<q>}:meta       HASH  queue settings (paused, defaults, retention)
-- KEYS[2] relayq:{<q>}:prios      ZSET  priorities with a non-empty ready list
-- KEYS[3] relayq:{<q>}:scheduled  ZSET  job id by due time (ms)
-- KEYS[4] relayq:{<q>}:totals     HASH  lifetime counters
-- KEYS[5] relayq:{<q>}:seq        STRING id sequence
-- KEYS[6] relayq:{<q>}:wake       LIST  wake-up token for idle workers
-- ARGV[1] key prefix relayq:{<q>}:  (job, ready, idem, deps, children, waiting, linking keys)
-- ARGV[2] queue name (for events)
-- ARGV[3] number of jobs N (1..BATCH_LIMIT)
-- ARGV[4 + 14*(i-1) ...] per job, the 12 fields of enqueue.lua, then
--   depends_on: parents, comma-separated, each a full job id '<queue>.<n>' or '@<k>' (job k of
--     this call, k < i); '' = none; at most MAX_PARENTS
--   on_parent_failure: '' or 'cancel' (the default) or 'run'
--
-- Reply: {'ok', id_1, state_1, duplicate_1, ...} as enqueue.lua (state may be 'waiting', or
--        'cancelled' when a parent of this queue had already failed)
--    or  {'invalid_argument' | 'payload_too_large' | 'invalid_payload', message}: nothing written.

--@include lib/jobs.lua
--@include lib/deps.lua

local deps = deps_lib()
local bad_keys = keys_problem(6, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local k = {meta = KEYS[1], prios = KEYS[2], scheduled = KEYS[3], totals = KEYS[4],
           seq = KEYS[5], wake = KEYS[6]}
local prefix, queue = ARGV[1], ARGV[2]
local fields_per_job = job_fields + 2

local n, err = int_arg(ARGV[3], 'job count', 1, BATCH_LIMIT)
if not n then return {'invalid_argument', err} end
if #ARGV ~= 3 + fields_per_job * n then
  return {'invalid_argument',
          string.format('expected %d job fields, got %d', fields_per_job * n, #ARGV - 3)}
end

local now = now_ms()
local settings = job_settings(k.meta)

-- The parents of job i: a list of full ids and '@k' references, or nil and a message.
local function check_parents(text, i)
  local parents, seen = {}, {}
  if text == '' then return parents end
  for token in string.gmatch(text, '[^,]+') do
    if not seen[token] then
      seen[token] = true
      local ref = string.match(token, '^@(%d+)$')
      if ref then
        local r = tonumber(ref)
        if r == i then return nil, 'a job cannot depend on itself' end
        if r < 1 or r > i then return nil, 'parent ' .. token .. ' is not an earlier job' end
      else
        local pq, pid = deps.split_job_id(token)
        if not pq or #pq > MAX_QUEUE_NAME_LENGTH or #pid > MAX_JOB_ID_DIGITS then
          return nil, 'invalid parent id ' .. string.format('%q', string.sub(token, 1, 90))
        end
        if pq == queue and redis.call('EXISTS', prefix .. 'job:' .. pid) == 0 then
          return nil, 'unknown parent ' .. token
        end
      end
      parents[#parents + 1] = token
      if #parents > MAX_PARENTS then
        return nil, 'more than ' .. MAX_PARENTS .. ' parents'
      end
    end
  end
  if #parents == 0 then return nil, 'depends_on is malformed' end
  return parents
end

-- Check every job before writing anything.
local jobs = {}
for i = 1, n do
  local a = 3 + fields_per_job * (i - 1)
  local job, e, status = check_job(ARGV, a, now, settings)
  if job then
    job.parents, e = check_parents(ARGV[a + job_fields + 1], i)
    local opf = ARGV[a + job_fields + 2]
    if e == nil and opf ~= '' and opf ~= 'cancel' and opf ~= 'run' then
      e = 'on_parent_failure must be cancel or run'
    end
    job.run_anyway = opf == 'run'
    job.waiting = job.parents ~= nil and #job.parents > 0
  end
  if e then
    if n > 1 then e = string.format('job %d: %s', i, e) end
    return {status or 'invalid_argument', e}
  end
  jobs[i] = job
end

-- writes below
local reply = create_jobs(prefix, queue, k, jobs, now, settings, {'ok'})
for i, job in ipairs(jobs) do
  local at = 2 + 3 * (i - 1)
  if job.waiting and reply[at + 2] == 0 then
    local id = reply[at]
    local child = queue .. '.' .. id
    local job_key = prefix .. 'job:' .. id
    local parents, facts, cross = {}, {}, false
    for _, token in ipairs(job.parents) do
      local ref = string.match(token, '^@(%d+)$')
      parents[#parents + 1] = ref and (queue .. '.' .. reply[2 + 3 * (tonumber(ref) - 1)]) or token
    end
    redis.call('HSET', job_key, 'dp', table.concat(parents, ','))
    if job.run_anyway then redis.call('HSET', job_key, 'opf', 'run') end
    redis.call('SADD', deps.deps_key(prefix, id), unpack(parents))
    for _, parent in ipairs(parents) do
      local pq, pid = deps.split_job_id(parent)
      if pq ~= queue then
        cross = true
      else
        local pkey = prefix .. 'job:' .. pid
        local p = redis.call('HMGET', pkey, 's', 'res')
        if p[1] == 'succeeded' or p[1] == 'dead' or p[1] == 'cancelled' then
          facts[#facts + 1] = {parent, p[1], p[2] or ''}
        elseif not p[1] then
          facts[#facts + 1] = {parent, 'missing', ''} -- a duplicate's original, expired
        else
          redis.call('SADD', deps.children_key(prefix, pid), child)
          redis.call('HSET', pkey, 'ch', '1')
        end
      end
    end
    if cross then redis.call('ZADD', prefix .. 'linking', now, id) end
    for _, fact in ipairs(facts) do
      if deps.apply(prefix, id, fact[1], fact[2], fact[3], now) == 'cancelled' then break end
    end
    reply[at + 1] = redis.call('HGET', job_key, 's')
  end
end
deps.flush(prefix, queue)
return reply
