-- group_limits.lua: set or clear one group's own limits (fair queues, lib/groups.lua), which
-- override the queue's group_* defaults: its concurrency limit, and its token bucket.
--
-- KEYS[1] relayq:{<q>}:meta  HASH  queue settings (group_burst, the default burst)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name
-- ARGV[3] group ([A-Za-z0-9_.:-], 1..MAX_GROUP_BYTES)
-- ARGV[4] max_running (0..MAX_RUNNING_LIMIT, 0: no limit for this group), '' for the default
-- ARGV[5] rate in jobs per second (0: none for this group, or MIN_RATE..MAX_RATE), '' default
-- ARGV[6] burst (1..MAX_BURST), '' for the default
--   ('', '', '' clears every limit of the group's own)
--
-- A rate above 0 needs a burst: its own, or the queue's group_burst. A new rate or burst fills
-- the group's bucket. A parked group goes back into the round robin (the next claim parks it
-- again if it is still held back).
--
-- Reply: {'ok'} | {'invalid_argument', message}: nothing written.

--@include lib/args.lua
--@include lib/groups.lua

local bad_keys = keys_problem(1, 2)
if bad_keys then return {'invalid_argument', bad_keys} end
local meta_key, prefix = KEYS[1], ARGV[1]
local g, err = group_arg(ARGV[3], false)
if not g then return {'invalid_argument', err} end
local max_running
max_running, err = int_arg(ARGV[4], 'max_running', 0, MAX_RUNNING_LIMIT, -1)
if not max_running then return {'invalid_argument', err} end
local rate
rate, err = num_arg(ARGV[5], 'rate', 0, MAX_RATE, -1)
if not rate then return {'invalid_argument', err} end
if rate > 0 and rate < MIN_RATE then
  return {'invalid_argument', 'rate must be 0 (no limit) or at least ' .. MIN_RATE}
end
local burst
burst, err = int_arg(ARGV[6], 'burst', 1, MAX_BURST, -1)
if not burst then return {'invalid_argument', err} end
if rate > 0 and burst < 0 and (tonumber(redis.call('HGET', meta_key, 'group_burst')) or 0) < 1 then
  return {'invalid_argument', 'a rate needs a burst: give one, or set the queue\'s group_burst'}
end

-- writes below
local gkey = fair().key(prefix, g)
local set, clear = {}, {'tok', 'tat'}
for _, f in ipairs({{'max', max_running, ARGV[4]}, {'rate', rate, ARGV[5]},
                    {'burst', burst, ARGV[6]}}) do
  if f[2] >= 0 then
    set[#set + 1] = f[1]
    set[#set + 1] = f[3]
  else
    clear[#clear + 1] = f[1]
  end
end
redis.call('HDEL', gkey, unpack(clear))
if #set > 0 then
  redis.call('HSET', gkey, unpack(set))
  redis.call('PERSIST', gkey)
  redis.call('ZINCRBY', prefix .. 'groups', 0, g)
end
if redis.call('HGET', gkey, 'at') == 'p' then
  redis.call('ZREM', prefix .. 'gparked', g)
  redis.call('HSET', gkey, 'at', 'r')
  redis.call('RPUSH', prefix .. 'gring', g)
  wake(prefix .. 'wake')
elseif #set == 0 then
  fair().forget_if_idle(prefix, g, gkey)
end
return {'ok'}
