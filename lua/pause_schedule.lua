-- pause_schedule.lua: pause or resume one periodic schedule of a queue. Either raises the
-- revision (a firing computed before does nothing). Paused, it leaves the due index; resumed,
-- it counts its ticks from now (the ticks of the pause are not made up for) and goes back to
-- the due index with score 0: the next firer computes its next tick.
--
-- KEYS[1] relayq:{<q>}:due_schedules  ZSET  active schedule id by next tick (ms)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name
-- ARGV[3] schedule id
-- ARGV[4] '1' pause | '0' resume
--
-- Reply: {'ok', 'paused' | 'resumed' | 'unchanged', revision}
--    or  {'not_found', message} | {'invalid_argument', message}: nothing written.

--@include lib/clock.lua
--@include lib/schedule.lua

local bad_keys = keys_problem(1, 2)
if bad_keys then return {'invalid_argument', bad_keys} end
if #ARGV ~= 4 or (ARGV[4] ~= '1' and ARGV[4] ~= '0') then
  return {'invalid_argument', 'expected the schedule id and 1 (pause) or 0 (resume)'}
end
local id, pause = ARGV[3], ARGV[4] == '1'
local key, key_err = schedule_key(ARGV[1], id)
if not key then return {'invalid_argument', key_err} end
local current = redis.call('HMGET', key, 'rev', 'paused')
local rev = tonumber(current[1])
if not rev then return {'not_found', 'no schedule ' .. id} end
if (current[2] == '1') == pause then return {'ok', 'unchanged', rev} end

-- writes below
rev = rev + 1
local now = ms_str(now_ms())
if pause then
  redis.call('HSET', key, 'rev', rev, 'paused', '1', 'updated', now)
  redis.call('ZREM', KEYS[1], id)
else
  redis.call('HSET', key, 'rev', rev, 'paused', '0', 'updated', now, 'after', now, 'next', '')
  redis.call('ZADD', KEYS[1], 0, id)
end
return {'ok', pause and 'paused' or 'resumed', rev}
