-- configure.lua: change a queue's defaults and retention (only the settings given). Applies to
-- jobs from now on: a job's max_attempts is fixed when it is enqueued.
--
-- KEYS[1] relayq:{<q>}:meta  HASH  queue settings
-- ARGV[1 + 2*(i-1) ...] name, value pairs: the settings of SETTING_RANGES (relayq/limits.py),
--   each within its range (an integer, or a number for FRACTIONAL_SETTINGS)
--
-- Fair queues (lib/groups.lua): a group_rate above 0 needs a group_burst of at least 1 (given,
-- or already set), and is at least MIN_RATE; a change of a group_* setting puts every parked
-- group back into the round robin, where the next claim parks again those still held back.
--
-- Reply: {'ok'} | {'invalid_argument', message}

--@include lib/args.lua
--@include lib/groups.lua

local bad_keys = keys_problem(1, 0)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key = KEYS[1]
if #ARGV == 0 or #ARGV % 2 ~= 0 then return {'invalid_argument', 'expected name, value pairs'} end
local fields, given = {}, {}
for a = 1, #ARGV, 2 do
  local limits = SETTING_RANGES[ARGV[a]]
  if not limits then return {'invalid_argument', 'unknown setting ' .. ARGV[a]} end
  local value, err
  if FRACTIONAL_SETTINGS[ARGV[a]] then
    value, err = num_arg(ARGV[a + 1], ARGV[a], limits[1], limits[2])
  else
    value, err = int_arg(ARGV[a + 1], ARGV[a], limits[1], limits[2])
  end
  if not value then return {'invalid_argument', err} end
  fields[#fields + 1] = ARGV[a]
  fields[#fields + 1] = ARGV[a + 1]
  given[ARGV[a]] = value
end
local prefix = string.sub(meta_key, 1, #meta_key - 4)
local regroup = given.group_max_running or given.group_rate or given.group_burst
if given.group_rate or given.group_burst then
  local stored = redis.call('HMGET', meta_key, 'group_rate', 'group_burst')
  local rate = given.group_rate or tonumber(stored[1]) or 0
  local burst = given.group_burst or tonumber(stored[2]) or 0
  if rate > 0 and rate < MIN_RATE then
    return {'invalid_argument', 'group_rate must be 0 (no limit) or at least ' .. MIN_RATE}
  end
  if rate > 0 and burst < 1 then
    return {'invalid_argument', 'group_rate needs a group_burst of at least 1'}
  end
end
-- writes below
redis.call('HSET', meta_key, unpack(fields))
if regroup then fair().unpark_all(prefix) end
return {'ok'}
