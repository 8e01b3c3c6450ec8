-- claim.lua: hand up to N ready jobs to one worker, each under a fresh lease.
--
-- Atomic, so no two workers can ever hold the same job. On its way it promotes due scheduled
-- jobs (a delay is honoured with no promoter running). Honours pause and the token-bucket rate
-- limit (rate jobs/s refilled continuously, at most burst tokens). Claiming takes the highest
-- priority first, FIFO within one: O(log 256) to find the priority, O(1) per job popped.
-- Fair queues (lib/groups.lua): `max_running` caps the queue's running jobs; once the queue has
-- seen a group, its groups (and the jobs without one, as one member) are served in round robin,
-- each within its own concurrency limit and token bucket: O(log groups) per job.
--
-- KEYS[1] relayq:{<q>}:meta       HASH  paused, rate, burst, tokens, tokens_at, grouped,
--                                       max_running, gready
-- KEYS[2] relayq:{<q>}:prios      ZSET  priorities with a non-empty ready list
-- KEYS[3] relayq:{<q>}:scheduled  ZSET  job id by due time (ms)
-- KEYS[4] relayq:{<q>}:running    ZSET  job id by lease deadline (ms)
-- KEYS[5] relayq:{<q>}:totals     HASH  lifetime counters
-- KEYS[6] relayq:{<q>}:wake       LIST  wake-up token for idle workers
-- KEYS[7] relayq:{<q>}:leases     STRING lease sequence
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name (for events)
-- ARGV[3] most jobs to claim (1..MAX_CLAIM_COUNT)
-- ARGV[4] lease length in ms (1..MAX_VISIBILITY_MS)
-- ARGV[5] worker id (1..MAX_WORKER_ID_BYTES bytes)
-- ARGV[6] lease nonce: a random string from the claimer, prefixed to each lease token
--
-- Reply: {'ok', id_1, fields_1, ..., id_N, fields_N}  N >= 1; fields = the job hash after the
--        claim, as flat name, value pairs in which a name may repeat: the last value wins
--    or  {'empty', next_due_in_ms}      nothing ready; -1 when nothing is scheduled either
--    or  {'paused'}
--    or  {'throttled', retry_after_ms}  jobs are ready but the rate limit has no token (the
--                                       queue's, or every group's that has ready jobs)
--    or  {'invalid_argument', message}

--@include lib/clock.lua
--@include lib/args.lua
--@include lib/ready.lua
--@include lib/wake.lua
--@include lib/events.lua
--@include lib/promote.lua
--@include lib/groups.lua

local bad_keys = keys_problem(7, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, prios_key, scheduled_key, running_key, totals_key, wake_key, leases_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local prefix, queue = ARGV[1], ARGV[2]

local count, err = int_arg(ARGV[3], 'count', 1, MAX_CLAIM_COUNT)
if not count then return {'invalid_argument', err} end
local visibility
visibility, err = int_arg(ARGV[4], 'visibility_ms', 1, MAX_VISIBILITY_MS)
if not visibility then return {'invalid_argument', err} end
local worker
worker, err = str_arg(ARGV[5], 'worker_id', MAX_WORKER_ID_BYTES)
if not worker then return {'invalid_argument', err} end
local nonce = ARGV[6] or ''
if #nonce > MAX_LEASE_NONCE_BYTES then
  return {'invalid_argument', 'lease nonce must be at most ' .. MAX_LEASE_NONCE_BYTES .. ' bytes'}
end

local meta = redis.call('HMGET', meta_key, 'paused', 'rate', 'burst', 'tokens', 'tokens_at',
  'grouped', 'max_running', 'gready')
if meta[1] == '1' then return {'paused'} end
local grouped, max_running = meta[6] == '1', tonumber(meta[7])

local now = now_ms()
-- writes below (promotion is part of every claim, whatever it answers)
local _, promoted_grouped = promote_due(prefix, queue, scheduled_key, prios_key, now,
  PROMOTE_PER_CLAIM)
if promoted_grouped then -- grouped jobs became ready (the queue's first, maybe): read again
  local m = redis.call('HMGET', meta_key, 'grouped', 'gready')
  grouped, meta[8] = m[1] == '1', m[2]
end

if redis.call('EXISTS', prios_key) == 0 and not (grouped and (tonumber(meta[8]) or 0) > 0) then
  return {'empty', next_due_in(scheduled_key, now)}
end
if max_running and max_running > 0 then -- fair queues: the queue's concurrency limit
  count = math.min(count, max_running - redis.call('ZCARD', running_key))
  if count <= 0 then return {'empty', next_due_in(scheduled_key, now)} end
end

-- Token bucket: refill by elapsed time, spend one token per job handed out.
local rate, burst = tonumber(meta[2]), tonumber(meta[3])
local tokens
if rate then
  local last = tonumber(meta[5]) or now
  tokens = math.min(burst, (tonumber(meta[4]) or burst) + (now - last) * rate / 1000)
  if tokens < 1 then
    redis.call('HINCRBY', totals_key, 'throttled', 1)
    return {'throttled', math.ceil((1 - tokens) * 1000 / rate)}
  end
  count = math.min(count, math.floor(tokens))
end

local ids, _, group_throttled
if grouped then
  ids, _, group_throttled = fair().claim(prefix, count, now,
    function(k) return pop_ready(prefix, prios_key, k) end)
  if group_throttled then
    redis.call('HINCRBY', totals_key, 'throttled', 1)
    return {'throttled', group_throttled}
  end
else
  ids = pop_ready(prefix, prios_key, count)
end
if #ids == 0 then return {'empty', next_due_in(scheduled_key, now)} end
local deadline = ms_str(now + visibility)
local started = ms_str(now)
local last_lease = redis.call('INCRBY', leases_key, #ids)
local reply = {'ok'}
local claimed, running = {}, {}
for i, id in ipairs(ids) do
  local job_key = prefix .. 'job:' .. id
  local h = redis.call('HGETALL', job_key)
  local state, attempts
  for f = 1, #h, 2 do
    if h[f] == 's' then state = h[f + 1] elseif h[f] == 'a' then attempts = h[f + 1] end
  end
  if state == 'ready' then -- anything else is a stale entry: skip it
    local lease = nonce .. string.format('%x', last_lease - #ids + i)
    local changed = {'s', 'running', 'a', (tonumber(attempts) or 0) + 1, 'st', started,
                     'ld', deadline, 'w', worker, 'l', lease}
    redis.call('HSET', job_key, unpack(changed))
    -- The reply is the hash as it was, then the fields just written: the last value wins.
    for _, v in ipairs(changed) do h[#h + 1] = v end
    reply[#reply + 1] = id
    reply[#reply + 1] = h
    claimed[#claimed + 1] = id
    running[#running + 1] = deadline
    running[#running + 1] = id
  end
end
if #running > 0 then redis.call('ZADD', running_key, unpack(running)) end
redis.call('HINCRBY', totals_key, 'claimed', #claimed)
if rate then
  redis.call('HSET', meta_key, 'tokens', tostring(tokens - #claimed), 'tokens_at', ms_str(now))
end
-- Jobs left behind: pass the wake-up on to the next idle worker.
if redis.call('EXISTS', prios_key) == 1 or (grouped and fair().ring_busy(prefix)) then
  wake(wake_key)
end
emit(prefix, queue, 'running', claimed)
if #claimed == 0 then return {'empty', next_due_in(scheduled_key, now)} end
return reply
