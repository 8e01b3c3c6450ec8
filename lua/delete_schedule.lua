-- delete_schedule.lua: delete one periodic schedule of a queue (the jobs it made stay).
--
-- KEYS[1] relayq:{<q>}:schedules      SET   every schedule id of the queue
-- KEYS[2] relayq:{<q>}:due_schedules  ZSET  active schedule id by next tick (ms)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name
-- ARGV[3] schedule id
--
-- Reply: {'ok', 'deleted', revision}
--    or  {'not_found', message} | {'invalid_argument', message}: nothing written.

--@include lib/schedule.lua

local bad_keys = keys_problem(2, 2)
if bad_keys then return {'invalid_argument', bad_keys} end
if #ARGV ~= 3 then return {'invalid_argument', 'expected 3 arguments'} end
local id = ARGV[3]
local key, key_err = schedule_key(ARGV[1], id)
if not key then return {'invalid_argument', key_err} end
local rev = redis.call('HGET', key, 'rev')
if not rev then return {'not_found', 'no schedule ' .. id} end

-- writes below
redis.call('DEL', key)
redis.call('SREM', KEYS[1], id)
redis.call('ZREM', KEYS[2], id)
return {'ok', 'deleted', tonumber(rev)}
