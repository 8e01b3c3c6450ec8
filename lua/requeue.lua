-- requeue.lua: give dead jobs another life. Each goes to the tail of its ready list with its
-- attempts reset to 0 and its retention cleared; its last error and its attempt history
-- (relayq:{<q>}:history:<id>, its retention cleared too) are kept for reference.
--
-- KEYS[1] relayq:{<q>}:meta   HASH  queue settings (paused)
-- KEYS[2] relayq:{<q>}:dead   ZSET  job id by time of death (ms)
-- KEYS[3] relayq:{<q>}:prios  ZSET  priorities with a non-empty ready list
-- KEYS[4] relayq:{<q>}:wake   LIST  wake-up token for idle workers
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name (for events)
-- ARGV[3] most jobs to requeue when no ids are given (1..MAX_SWEEP_LIMIT): the oldest dead ones
-- ARGV[4 ...] job ids (optional)
--
-- Reply: {'ok', requeued, status_1, ..., status_N}  one status per given id:
--        'ok' | 'not_found' (no such dead job)
--    or  {'invalid_argument', message}

--@include lib/dead.lua
--@include lib/ready.lua
--@include lib/wake.lua
--@include lib/events.lua
--@include lib/history.lua

local bad_keys = keys_problem(4, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, dead_key, prios_key, wake_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, queue = ARGV[1], ARGV[2]
local ids, explicit = dead_targets(dead_key)
if not ids then return {'invalid_argument', explicit} end

-- writes below
local reply, requeued = {'ok', 0}, {}
for _, id in ipairs(ids) do
  local job_key = prefix .. 'job:' .. id
  local status = 'not_found'
  if redis.call('ZSCORE', dead_key, id) then
    redis.call('ZREM', dead_key, id)
    if redis.call('HGET', job_key, 's') == 'dead' then
      redis.call('PERSIST', job_key)
      redis.call('PERSIST', history_key(prefix, id))
      redis.call('HSET', job_key, 's', 'ready', 'a', 0)
      redis.call('HDEL', job_key, 'f', 'l', 'r')
      local job = redis.call('HMGET', job_key, 'pr', 'g')
      push_ready(prefix, prios_key, id, job[1] or '0', false, job[2])
      requeued[#requeued + 1] = id
      status = 'ok'
    end
  end
  if explicit then reply[#reply + 1] = status end
end
reply[2] = #requeued
if #requeued > 0 and redis.call('HGET', meta_key, 'paused') ~= '1' then wake(wake_key) end
emit(prefix, queue, 'ready', requeued)
return reply
