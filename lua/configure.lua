-- configure.lua: change a queue's defaults and retention (only the settings given). Applies to
-- jobs from now on: a job's max_attempts is fixed when it is enqueued.
--
-- KEYS[1] relayq:{<q>}:meta  HASH  queue settings
-- ARGV[1 + 2*(i-1) ...] name, value pairs: the settings of SETTING_RANGES (relayq/limits.py),
--   each within its range
--
-- Reply: {'ok'} | {'invalid_argument', message}

--@include lib/args.lua

local bad_keys = keys_problem(1, 0)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key = KEYS[1]
if #ARGV == 0 or #ARGV % 2 ~= 0 then return {'invalid_argument', 'expected name, value pairs'} end
local fields = {}
for a = 1, #ARGV, 2 do
  local limits = SETTING_RANGES[ARGV[a]]
  if not limits then return {'invalid_argument', 'unknown setting ' .. ARGV[a]} end
  local value, err = int_arg(ARGV[a + 1], ARGV[a], limits[1], limits[2])
  if not value then return {'invalid_argument', err} end
  fields[#fields + 1] = ARGV[a]
  fields[#fields + 1] = ARGV[a + 1]
end
-- writes below
redis.call('HSET', meta_key, unpack(fields))
return {'ok'}
