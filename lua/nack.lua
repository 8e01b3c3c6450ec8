-- nack.lua: a running job failed. It goes back to scheduled after a full-jitter exponential
-- backoff (or the delay the caller names; ready at once for a delay of 0), or to the dead-letter
-- queue when `retry` is 0 or its attempts are spent. The attempt is recorded in the job's
-- history (lib/history.lua: worker, started, ended, outcome retried | dead | cancelled, error).
-- A job whose cancel was requested while it ran (cancel.lua) ends `cancelled` instead, never
-- retried, whatever the failure (the handler raising relayq.Cancelled is the usual one). A retried
-- job's progress is cleared: the next attempt reports its own.
--
-- Fenced like ack; a nack repeated by the same holder answers the job's current state again.
--
-- KEYS[1] relayq:{<q>}:meta       HASH  queue settings (backoff, dead retention, paused)
-- KEYS[2] relayq:{<q>}:running    ZSET  job id by lease deadline (ms)
-- KEYS[3] relayq:{<q>}:scheduled  ZSET  job id by due time (ms)
-- KEYS[4] relayq:{<q>}:prios      ZSET  priorities with a non-empty ready list
-- KEYS[5] relayq:{<q>}:dead       ZSET  job id by time of death (ms)
-- KEYS[6] relayq:{<q>}:totals     HASH  lifetime counters
-- KEYS[7] relayq:{<q>}:wake       LIST  wake-up token for idle workers
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name (for events)
-- ARGV[3] job id
-- ARGV[4] lease token
-- ARGV[5] error text (at most MAX_ERROR_BYTES; longer is cut)
-- ARGV[6] retry: '1' or '0'
-- ARGV[7] delay_ms before the retry, or '' for the backoff
-- ARGV[8] jitter: a fraction in [0, 1) that picks the point in the backoff window
--
-- Reply: {'ok', state, attempts, run_at_ms}   state: scheduled | ready | dead | cancelled;
--                                             run_at_ms is '' unless scheduled
--    or  {'not_found'} | {'lease_lost', current_state}
--    or  {'invalid_argument', message}

--@include lib/clock.lua
--@include lib/args.lua
--@include lib/config.lua
--@include lib/lease.lua
--@include lib/ready.lua
--@include lib/wake.lua
--@include lib/finish.lua
--@include lib/history.lua
--@include lib/backoff.lua
--@include lib/events.lua
--@include lib/deps.lua

local bad_keys = keys_problem(7, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, running_key, scheduled_key, prios_key, dead_key, totals_key, wake_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local prefix, queue, id, lease = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local error_text = string.sub(ARGV[5] or '', 1, MAX_ERROR_BYTES)
if ARGV[6] ~= '1' and ARGV[6] ~= '0' then return {'invalid_argument', 'retry must be 1 or 0'} end
local retry = ARGV[6] == '1'
local delay, err = int_arg(ARGV[7], 'delay_ms', 0, MAX_DURATION_MS, -1)
if not delay then return {'invalid_argument', err} end
local jitter
jitter, err = num_arg(ARGV[8], 'jitter', 0, 1)
if not jitter then return {'invalid_argument', err} end

local job_key = prefix .. 'job:' .. id
local status, state, same_holder, _, cancel_requested = check_lease(job_key, lease)
if status ~= 'ok' then
  if same_holder then
    local f = redis.call('HMGET', job_key, 'a', 'r')
    return {'ok', state, tonumber(f[1]) or 0, state == 'scheduled' and f[2] or ''}
  end
  if status == 'not_found' then return {'not_found'} end
  return {status, state}
end

local now = now_ms()
local config = read_config(meta_key,
  {'backoff_base_ms', 'backoff_cap_ms', 'dead_ttl_ms', 'succeeded_ttl_ms', 'max_running'})
local job = redis.call('HMGET', job_key, 'a', 'ma', 'pr', 'bb', 'bc', 'w', 'st', 'ch', 'g')
local attempts, max_attempts = tonumber(job[1]) or 0, tonumber(job[2]) or 1

-- writes below
redis.call('ZREM', running_key, id)
slots_freed(prefix, {job[9] or ''}, config.max_running) -- fair queues (lib/groups.lua)
redis.call('HSET', job_key, 'err', error_text)
local ended = ms_str(now)
if cancel_requested then
  record_attempt(prefix, id, job_key, job[6], job[7], ended, 'cancelled', error_text)
  finish(job_key, 'cancelled', now, config.succeeded_ttl_ms, nil, history_key(prefix, id))
  redis.call('HINCRBY', totals_key, 'cancelled', 1)
  emit(prefix, queue, 'cancelled', {id})
  if job[8] == '1' then deps_lib().finished(prefix, queue, id, 'cancelled', '', now) end
  return {'ok', 'cancelled', attempts, ''}
end
redis.call('HINCRBY', totals_key, 'failed', 1)
if not retry or attempts >= max_attempts then
  record_attempt(prefix, id, job_key, job[6], job[7], ended, 'dead', error_text)
  finish(job_key, 'dead', now, config.dead_ttl_ms, nil, history_key(prefix, id))
  redis.call('ZADD', dead_key, now, id)
  redis.call('HINCRBY', totals_key, 'dead', 1)
  emit(prefix, queue, 'dead', {id})
  if job[8] == '1' then deps_lib().finished(prefix, queue, id, 'dead', '', now) end
  return {'ok', 'dead', attempts, ''}
end

redis.call('HINCRBY', totals_key, 'retried', 1)
record_attempt(prefix, id, job_key, job[6], job[7], ended, 'retried', error_text)
redis.call('HDEL', job_key, 'pg', 'pi')
if delay < 0 then
  delay = backoff_ms(attempts, tonumber(job[4]) or config.backoff_base_ms,
    tonumber(job[5]) or config.backoff_cap_ms, jitter)
end
if delay == 0 then
  redis.call('HSET', job_key, 's', 'ready')
  redis.call('HDEL', job_key, 'r')
  push_ready(prefix, prios_key, id, job[3] or '0', false, job[9])
  if redis.call('HGET', meta_key, 'paused') ~= '1' then wake(wake_key) end
  emit(prefix, queue, 'ready', {id})
  return {'ok', 'ready', attempts, ''}
end
local run_at = ms_str(now + delay)
redis.call('HSET', job_key, 's', 'scheduled', 'r', run_at)
redis.call('ZADD', scheduled_key, run_at, id)
emit(prefix, queue, 'scheduled', {id})
return {'ok', 'scheduled', attempts, run_at}
