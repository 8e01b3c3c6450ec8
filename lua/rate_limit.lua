-- rate_limit.lua: set or clear a queue's token-bucket rate limit. Setting it fills the bucket
-- (burst tokens); the claim script refills at `rate` tokens per second and spends one per job.
--
-- KEYS[1] relayq:{<q>}:meta   HASH  rate, burst, tokens, tokens_at
-- KEYS[2] relayq:{<q>}:prios  ZSET  priorities with a non-empty ready list
-- KEYS[3] relayq:{<q>}:wake   LIST  wake-up token for idle workers
-- ARGV[1] rate in jobs per second (MIN_RATE..MAX_RATE), or '' to clear the limit
-- ARGV[2] burst: most tokens the bucket holds (1..MAX_BURST); '' with a clear
--
-- Reply: {'ok'} | {'invalid_argument', message}

--@include lib/clock.lua
--@include lib/args.lua
--@include lib/wake.lua

local bad_keys = keys_problem(3, 0)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, prios_key, wake_key = KEYS[1], KEYS[2], KEYS[3]
if ARGV[1] == '' then
  -- writes below
  redis.call('HDEL', meta_key, 'rate', 'burst', 'tokens', 'tokens_at')
else
  local rate, err = num_arg(ARGV[1], 'rate', MIN_RATE, MAX_RATE)
  if not rate then return {'invalid_argument', err} end
  local burst
  burst, err = int_arg(ARGV[2], 'burst', 1, MAX_BURST)
  if not burst then return {'invalid_argument', err} end
  local now = now_ms()
  -- writes below
  redis.call('HSET', meta_key, 'rate', ARGV[1], 'burst', burst, 'tokens', burst,
    'tokens_at', ms_str(now))
end
if redis.call('EXISTS', prios_key) == 1 then wake(wake_key) end
return {'ok'}
