-- due_schedules.lua: read the schedules a firer has to look at, on the Redis clock. Writes
-- nothing. A queue without schedules costs one ZRANGEBYSCORE of a missing key.
--
-- KEYS[1] relayq:{<q>}:due_schedules  ZSET  active schedule id by next tick (ms)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] at most this many due schedules (1..MAX_SWEEP_LIMIT)
-- ARGV[3 ..] optional schedule ids: read these (whether due or not) instead of the due ones
--
-- Reply: {'ok', now (ms), next_due (ms of the earliest next tick not due yet, or -1),
--         id_1, fields_1, ...} with fields_i the schedule hash as HGETALL gives it (empty for
--         an id that does not exist)
--    or  {'invalid_argument', message}

--@include lib/clock.lua
--@include lib/args.lua

local bad_keys = keys_problem(1, 1)
if bad_keys then return {'invalid_argument', bad_keys} end
local prefix = ARGV[1]
local limit, e = int_arg(ARGV[2], 'limit', 1, MAX_SWEEP_LIMIT)
if e then return {'invalid_argument', e} end
local now = now_ms()
local ids
if #ARGV > 2 then
  ids = {}
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
end
local later = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local reply = {'ok', now, later[2] and tonumber(later[2]) or -1}
for _, id in ipairs(ids) do
  reply[#reply + 1] = id
  reply[#reply + 1] = redis.call('HGETALL', prefix .. 'schedule:' .. id)
end
return reply
