-- reap.lua: recover jobs whose lease deadline has passed (their worker died or hung). Each goes
-- back to the head of its ready list, or to the dead-letter queue when its attempts are spent.
-- The lease token is cleared, so the old holder can no longer ack, nack or extend the job. The
-- lost attempt is recorded in the job's history (lib/history.lua: outcome reaped, or dead).
-- A job whose cancel was requested before its worker was lost ends `cancelled`, not requeued.
-- Also trims the succeeded and dead indexes to their retention. Safe to run from many workers
-- at once: every run is atomic and finds only what is still expired.
--
-- KEYS[1] relayq:{<q>}:meta       HASH  queue settings (retention, paused)
-- KEYS[2] relayq:{<q>}:running    ZSET  job id by lease deadline (ms)
-- KEYS[3] relayq:{<q>}:prios      ZSET  priorities with a non-empty ready list
-- KEYS[4] relayq:{<q>}:dead       ZSET  job id by time of death (ms)
-- KEYS[5] relayq:{<q>}:succeeded  ZSET  job id by finish time (ms)
-- KEYS[6] relayq:{<q>}:totals     HASH  lifetime counters
-- KEYS[7] relayq:{<q>}:wake       LIST  wake-up token for idle workers
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name (for events)
-- ARGV[3] most jobs to recover in this call (1..MAX_SWEEP_LIMIT)
--
-- Reply: {'ok', requeued, dead, cancelled}
--    or  {'invalid_argument', message}

--@include lib/clock.lua
--@include lib/args.lua
--@include lib/config.lua
--@include lib/ready.lua
--@include lib/wake.lua
--@include lib/finish.lua
--@include lib/history.lua
--@include lib/events.lua
--@include lib/deps.lua

local bad_keys = keys_problem(7, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, running_key, prios_key, dead_key, succeeded_key, totals_key, wake_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local prefix, queue = ARGV[1], ARGV[2]
local limit, err = int_arg(ARGV[3], 'limit', 1, MAX_SWEEP_LIMIT)
if not limit then return {'invalid_argument', err} end

local now = now_ms()
local config = read_config(meta_key, {'dead_ttl_ms', 'succeeded_ttl_ms', 'max_running'})
local expired = redis.call('ZRANGEBYSCORE', running_key, '-inf', '(' .. ms_str(now), 'LIMIT', 0, limit)

-- writes below
trim_index(succeeded_key, now, config.succeeded_ttl_ms)
trim_index(dead_key, now, config.dead_ttl_ms)
if #expired == 0 then return {'ok', 0, 0, 0} end

local requeued, died, cancelled, freed = {}, {}, {}, 0
local ended = ms_str(now)
for _, id in ipairs(expired) do
  local job_key = prefix .. 'job:' .. id
  local job = redis.call('HMGET', job_key, 's', 'a', 'ma', 'pr', 'w', 'st', 'cr', 'ch', 'g')
  if job[1] == 'running' then
    redis.call('HDEL', job_key, 'l')
    slots_freed(prefix, {job[9] or ''}, 0) -- fair queues (lib/groups.lua); woken below
    freed = freed + 1
    if job[7] == '1' then
      local lost = 'lease expired after a cancel request: worker lost'
      redis.call('HSET', job_key, 'err', lost)
      record_attempt(prefix, id, job_key, job[5], job[6], ended, 'cancelled', lost)
      finish(job_key, 'cancelled', now, config.succeeded_ttl_ms, nil, history_key(prefix, id))
      cancelled[#cancelled + 1] = id
      if job[8] == '1' then deps_lib().settle(prefix, queue, id, 'cancelled', '', now) end
    elseif (tonumber(job[2]) or 0) >= (tonumber(job[3]) or 1) then
      local lost = 'lease expired: worker lost (attempts spent)'
      redis.call('HSET', job_key, 'err', lost)
      record_attempt(prefix, id, job_key, job[5], job[6], ended, 'dead', lost)
      finish(job_key, 'dead', now, config.dead_ttl_ms, nil, history_key(prefix, id))
      redis.call('ZADD', dead_key, now, id)
      died[#died + 1] = id
      if job[8] == '1' then deps_lib().settle(prefix, queue, id, 'dead', '', now) end
    else
      local lost = 'lease expired: worker lost'
      redis.call('HSET', job_key, 's', 'ready', 'err', lost)
      redis.call('HDEL', job_key, 'pg', 'pi')
      record_attempt(prefix, id, job_key, job[5], job[6], ended, 'reaped', lost)
      push_ready(prefix, prios_key, id, job[4] or '0', true, job[9])
      requeued[#requeued + 1] = id
    end
  end
end
redis.call('ZREM', running_key, unpack(expired))
local reaped = #requeued + #died + #cancelled
if reaped > 0 then redis.call('HINCRBY', totals_key, 'reaped', reaped) end
if #died > 0 then redis.call('HINCRBY', totals_key, 'dead', #died) end
if #cancelled > 0 then redis.call('HINCRBY', totals_key, 'cancelled', #cancelled) end
if (#requeued > 0 or (freed > 0 and config.max_running > 0))
    and redis.call('HGET', meta_key, 'paused') ~= '1' then
  wake(wake_key)
end
emit(prefix, queue, 'ready', requeued)
emit(prefix, queue, 'dead', died)
emit(prefix, queue, 'cancelled', cancelled)
if deps_made then deps_made.flush(prefix, queue) end -- workflows: what children became
return {'ok', #requeued, #died, #cancelled}
