-- release.lua: hand running jobs back without spending an attempt (a worker draining after its
-- grace period ran out). Each job goes to the head of its ready list, before newer jobs.
--
-- Fenced like ack. The attempt the release hands back is taken off the count again, and its
-- progress is cleared. A job whose cancel was requested is not handed back: it ends `cancelled`.
--
-- KEYS[1] relayq:{<q>}:meta     HASH  queue settings (paused)
-- KEYS[2] relayq:{<q>}:running  ZSET  job id by lease deadline (ms)
-- KEYS[3] relayq:{<q>}:prios    ZSET  priorities with a non-empty ready list
-- KEYS[4] relayq:{<q>}:wake     LIST  wake-up token for idle workers
-- KEYS[5] relayq:{<q>}:totals   HASH  lifetime counters (cancelled)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name (for events)
-- ARGV[3 + 2*(i-1) ...] per job: id, lease token
--
-- Reply: {'ok', status_1, ..., status_N}, each 'ok', 'cancelled', 'not_found' or 'lease_lost'
--    or  {'invalid_argument', message}

--@include lib/lease.lua
--@include lib/config.lua
--@include lib/finish.lua
--@include lib/history.lua
--@include lib/ready.lua
--@include lib/wake.lua
--@include lib/events.lua
--@include lib/args.lua
--@include lib/deps.lua

local bad_keys = keys_problem(5, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, running_key, prios_key, wake_key, totals_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
  KEYS[5]
local prefix, queue = ARGV[1], ARGV[2]
if (#ARGV - 2) % 2 ~= 0 or #ARGV == 2 then
  return {'invalid_argument', 'expected id, lease pairs'}
end

-- writes below (each job's fence is checked just before its own write)
local reply, released, cancelled, parents = {'ok'}, {}, {}, {}
for a = 3, #ARGV, 2 do
  local id, lease = ARGV[a], ARGV[a + 1]
  local job_key = prefix .. 'job:' .. id
  local status, _, _, _, cancel_requested, has_children, group = check_lease(job_key, lease)
  if status == 'ok' then slots_freed(prefix, {group}, 0) end -- fair queues (lib/groups.lua)
  if status == 'ok' and cancel_requested then
    local ttl = read_config(meta_key, {'succeeded_ttl_ms'}).succeeded_ttl_ms
    finish(job_key, 'cancelled', now_ms(), ttl, nil, history_key(prefix, id))
    redis.call('ZREM', running_key, id)
    cancelled[#cancelled + 1] = id
    status = 'cancelled'
    if has_children then parents[#parents + 1] = id end -- workflows: settled below
  elseif status == 'ok' then
    local attempts = tonumber(redis.call('HGET', job_key, 'a')) or 1
    redis.call('HSET', job_key, 's', 'ready', 'a', math.max(0, attempts - 1))
    redis.call('HDEL', job_key, 'l', 'pg', 'pi')
    redis.call('ZREM', running_key, id)
    push_ready(prefix, prios_key, id, redis.call('HGET', job_key, 'pr') or '0', true, group)
    released[#released + 1] = id
  end
  reply[#reply + 1] = status
end
if #released + #cancelled > 0 and redis.call('HGET', meta_key, 'paused') ~= '1' then
  wake(wake_key)
end
if #cancelled > 0 then redis.call('HINCRBY', totals_key, 'cancelled', #cancelled) end
emit(prefix, queue, 'ready', released)
emit(prefix, queue, 'cancelled', cancelled)
for _, id in ipairs(parents) do -- workflows: a cancelled parent settles its children
  deps_lib().finished(prefix, queue, id, 'cancelled', '', now_ms())
end
return reply
