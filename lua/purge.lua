-- purge.lua: delete dead jobs for good: their hashes, their attempt histories, their
-- dead-letter entries and the idempotency keys that still point at them.
--
-- KEYS[1] relayq:{<q>}:dead  ZSET  job id by time of death (ms)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name (for events)
-- ARGV[3] most jobs to delete when no ids are given (1..MAX_SWEEP_LIMIT): the oldest dead ones
-- ARGV[4 ...] job ids (optional)
--
-- Reply: {'ok', deleted, status_1, ..., status_N}  one status per given id:
--        'ok' | 'not_found' (no such dead job)
--    or  {'invalid_argument', message}

--@include lib/dead.lua
--@include lib/events.lua
--@include lib/history.lua

local bad_keys = keys_problem(1, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local dead_key = KEYS[1]
local prefix, queue = ARGV[1], ARGV[2]
local ids, explicit = dead_targets(dead_key)
if not ids then return {'invalid_argument', explicit} end

-- writes below
local reply, deleted = {'ok', 0}, {}
for _, id in ipairs(ids) do
  local status = 'not_found'
  if redis.call('ZREM', dead_key, id) == 1 then
    local job_key = prefix .. 'job:' .. id
    local fields = redis.call('HMGET', job_key, 's', 'ik')
    if fields[1] == 'dead' then
      if fields[2] then
        local idem_key = prefix .. 'idem:' .. fields[2]
        if redis.call('GET', idem_key) == id then redis.call('DEL', idem_key) end
      end
      redis.call('DEL', job_key, history_key(prefix, id))
      deleted[#deleted + 1] = id
      status = 'ok'
    end
  end
  if explicit then reply[#reply + 1] = status end
end
reply[2] = #deleted
emit(prefix, queue, 'deleted', deleted)
return reply
