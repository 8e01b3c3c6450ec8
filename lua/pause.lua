-- pause.lua: pause or resume a queue. A paused queue accepts jobs and hands none out; resuming
-- wakes an idle worker when jobs are waiting.
--
-- KEYS[1] relayq:{<q>}:meta   HASH  paused
-- KEYS[2] relayq:{<q>}:prios  ZSET  priorities with a non-empty ready list
-- KEYS[3] relayq:{<q>}:wake   LIST  wake-up token for idle workers
-- ARGV[1] '1' to pause, '0' to resume
--
-- Reply: {'ok'} | {'invalid_argument', message}

--@include lib/wake.lua
--@include lib/args.lua

local bad_keys = keys_problem(3, 0)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, prios_key, wake_key = KEYS[1], KEYS[2], KEYS[3]
if ARGV[1] ~= '1' and ARGV[1] ~= '0' then
  return {'invalid_argument', 'paused must be 1 or 0'}
end
-- writes below
if ARGV[1] == '1' then
  redis.call('HSET', meta_key, 'paused', '1')
else
  redis.call('HDEL', meta_key, 'paused')
  if redis.call('EXISTS', prios_key) == 1 then wake(wake_key) end
end
return {'ok'}
