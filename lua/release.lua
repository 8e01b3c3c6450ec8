-- release.lua: hand running jobs back without spending an attempt (a worker draining after its
-- grace period ran out). Each job goes to the head of its ready list, before newer jobs.
--
-- Fenced like ack. The attempt the release hands back is taken off the count again.
--
-- KEYS[1] relayq:{<q>}:meta     HASH  queue settings (paused)
-- KEYS[2] relayq:{<q>}:running  ZSET  job id by lease deadline (ms)
-- KEYS[3] relayq:{<q>}:prios    ZSET  priorities with a non-empty ready list
-- KEYS[4] relayq:{<q>}:wake     LIST  wake-up token for idle workers
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name (for events)
-- ARGV[3 + 2*(i-1) ...] per job: id, lease token
--
-- Reply: {'ok', status_1, ..., status_N}, each 'ok', 'not_found' or 'lease_lost'
--    or  {'invalid_argument', message}

--@include lib/lease.lua
--@include lib/ready.lua
--@include lib/wake.lua
--@include lib/events.lua
--@include lib/args.lua

local bad_keys = keys_problem(4, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, running_key, prios_key, wake_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, queue = ARGV[1], ARGV[2]
if (#ARGV - 2) % 2 ~= 0 or #ARGV == 2 then
  return {'invalid_argument', 'expected id, lease pairs'}
end

-- writes below (each job's fence is checked just before its own write)
local reply, released = {'ok'}, {}
for a = 3, #ARGV, 2 do
  local id, lease = ARGV[a], ARGV[a + 1]
  local job_key = prefix .. 'job:' .. id
  local status = check_lease(job_key, lease)
  if status == 'ok' then
    local attempts = tonumber(redis.call('HGET', job_key, 'a')) or 1
    redis.call('HSET', job_key, 's', 'ready', 'a', math.max(0, attempts - 1))
    redis.call('HDEL', job_key, 'l')
    redis.call('ZREM', running_key, id)
    push_ready(prefix, prios_key, id, redis.call('HGET', job_key, 'pr') or '0', true)
    released[#released + 1] = id
  end
  reply[#reply + 1] = status
end
if #released > 0 and redis.call('HGET', meta_key, 'paused') ~= '1' then wake(wake_key) end
emit(prefix, queue, 'ready', released)
return reply
