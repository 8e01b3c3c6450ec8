-- lib/finish.lua: moving a job into a terminal state (succeeded, dead, cancelled). A finished job
-- hash expires after its retention; succeeded and dead jobs are also indexed by finish time in a
-- ZSET (relayq:{<q>}:succeeded, relayq:{<q>}:dead) so they can be counted, listed and trimmed.

--@include lib/clock.lua

-- `extra`: more name, value pairs to write with the state (e.g. the result). The lease deadline
-- and worker stay as they were: `w` tells who ran the job last, `ld` counts only while running.
-- `history`: the key of the job's attempt history (lib/history.lua), expired with the hash; nil
-- when the job has none.
local function finish(job_key, state, now, ttl_ms, extra, history)
  if extra then
    redis.call('HSET', job_key, 's', state, 'f', ms_str(now), unpack(extra))
  else
    redis.call('HSET', job_key, 's', state, 'f', ms_str(now))
  end
  redis.call('PEXPIRE', job_key, ttl_ms)
  if history then redis.call('PEXPIRE', history, ttl_ms) end
end

-- Drops index entries older than the retention (their hashes have expired or are about to).
local function trim_index(index_key, now, ttl_ms)
  redis.call('ZREMRANGEBYSCORE', index_key, '-inf', '(' .. ms_str(now - ttl_ms))
end
