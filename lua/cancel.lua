-- cancel.lua: cancel a job. A ready, scheduled or waiting job is cancelled at once (a waiting
-- one passes the cancel on to its own children: lib/deps.lua); a running one has its
-- cancel requested (below). A cancelled job keeps its hash (and its attempt history, if any) for
-- the succeeded retention, then expires.
--
-- Removing a ready job is LREM on its priority list: O(position in that list). Cancelling is an
-- operator action, not a hot path; claims stay O(1).
--
-- KEYS[1] relayq:{<q>}:meta       HASH  queue settings (succeeded_ttl_ms)
-- KEYS[2] relayq:{<q>}:prios      ZSET  priorities with a non-empty ready list
-- KEYS[3] relayq:{<q>}:scheduled  ZSET  job id by due time (ms)
-- KEYS[4] relayq:{<q>}:totals     HASH  lifetime counters
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name (for events)
-- ARGV[3] job id
--
-- A running job is not stopped here: its cancel is requested (field `cr`, one event
-- 'cancel_requested'; asked again, nothing more is written). Its worker learns it from its next
-- heartbeat (lua/heartbeat.lua) and whichever script ends the attempt (ack, nack, release, reap)
-- ends the job `cancelled`, never retried.
--
-- Reply: {'ok', 'cancelled'}  a ready or scheduled job, now cancelled
--    or  {'ok', 'running'}    a running job, its cancel requested
--    or  {'not_found'} | {'conflict', state}  (finished: not cancellable)
--    or  {'invalid_argument', message}  (wrong keys)

--@include lib/clock.lua
--@include lib/config.lua
--@include lib/ready.lua
--@include lib/finish.lua
--@include lib/history.lua
--@include lib/events.lua
--@include lib/args.lua
--@include lib/deps.lua

local bad_keys = keys_problem(4, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, prios_key, scheduled_key, totals_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, queue = ARGV[1], ARGV[2]
local id, err = str_arg(ARGV[3], 'job id', MAX_JOB_ID_DIGITS)
if not id then return {'invalid_argument', err} end
local job_key = prefix .. 'job:' .. id
local job = redis.call('HMGET', job_key, 's', 'pr', 'cr', 'ch', 'g')
local state = job[1]
if not state then return {'not_found'} end
if state == 'running' then
  -- writes below (a running job's only write)
  if job[3] ~= '1' then
    redis.call('HSET', job_key, 'cr', '1')
    emit(prefix, queue, 'cancel_requested', {id})
  end
  return {'ok', 'running'}
end
if state ~= 'ready' and state ~= 'scheduled' and state ~= 'waiting' then
  return {'conflict', state}
end

local now = now_ms()
local config = read_config(meta_key, {'succeeded_ttl_ms'})
-- writes below
if state == 'ready' then
  remove_ready(prefix, prios_key, id, job[2] or '0', job[5])
elseif state == 'waiting' then -- workflows: it no longer waits on its parents
  redis.call('ZREM', prefix .. 'waiting', id)
  redis.call('DEL', deps_lib().deps_key(prefix, id))
else
  redis.call('ZREM', scheduled_key, id)
end
finish(job_key, 'cancelled', now, config.succeeded_ttl_ms, nil, history_key(prefix, id))
redis.call('HINCRBY', totals_key, 'cancelled', 1)
emit(prefix, queue, 'cancelled', {id})
if job[4] == '1' then deps_lib().finished(prefix, queue, id, 'cancelled', '', now) end
return {'ok', 'cancelled'}
