-- lib/wake.lua: wake-ups for idle workers. An idle worker blocks in BLPOP on
-- relayq:{<q>}:wake. Whoever makes a job ready leaves one token there (never more than one, so the
-- list stays one element long); a worker that claims and leaves jobs behind passes a token on, so
-- several idle workers wake in a cascade, one round trip apart, with no polling.

local function wake(wake_key)
  if redis.call('LLEN', wake_key) == 0 then
    redis.call('RPUSH', wake_key, '1')
  end
end
