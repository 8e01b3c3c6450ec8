-- stats.lua: one consistent snapshot of a queue (read only).
--
-- KEYS[1] relayq:{<q>}:meta       HASH  paused, rate, burst
-- KEYS[2] relayq:{<q>}:prios      ZSET  priorities with a non-empty ready list
-- KEYS[3] relayq:{<q>}:scheduled  ZSET  job id by due time (ms)
-- KEYS[4] relayq:{<q>}:running    ZSET  job id by lease deadline (ms)
-- KEYS[5] relayq:{<q>}:dead       ZSET  job id by time of death (ms)
-- KEYS[6] relayq:{<q>}:succeeded  ZSET  job id by finish time (ms)
-- KEYS[7] relayq:{<q>}:totals     HASH  lifetime counters
-- ARGV[1] key prefix relayq:{<q>}:
--
-- Reply: {'ok', ready, scheduled, running, dead, succeeded, paused ('1'|'0'), rate, burst,
--         {totals as HGETALL}, latency_ms, waiting}   rate, burst: '' when unlimited;
--         latency_ms: the age of the oldest ready job, 0 when nothing is ready. A job is ready
--         since its due time (run_at), or its creation when it has none; the oldest is found
--         among the heads of the ready lists (one per priority: O(priorities), like the count;
--         the jobs of groups are counted, their age is not looked at).
--         waiting: jobs waiting for their parents (workflows: relayq:{<q>}:waiting).
--    or  {'invalid_argument', message}  (wrong keys)

--@include lib/clock.lua
--@include lib/ready.lua
--@include lib/args.lua

local bad_keys = keys_problem(7, 1)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, prios_key, scheduled_key, running_key, dead_key, succeeded_key, totals_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local prefix = ARGV[1]
local meta = redis.call('HMGET', meta_key, 'paused', 'rate', 'burst', 'gready')

-- jobs with a group (fair queues, lib/groups.lua) are counted in meta's gready
local ready, oldest = tonumber(meta[4]) or 0, nil
for _, p in ipairs(redis.call('ZRANGE', prios_key, 0, -1)) do
  local key = ready_key(prefix, p)
  ready = ready + redis.call('LLEN', key)
  local head = redis.call('LINDEX', key, 0)
  if head then
    local since = redis.call('HMGET', prefix .. 'job:' .. head, 'r', 'c')
    since = tonumber(since[1]) or tonumber(since[2])
    if since and (not oldest or since < oldest) then oldest = since end
  end
end
local latency = oldest and math.max(0, now_ms() - oldest) or 0

return {
  'ok',
  ready,
  redis.call('ZCARD', scheduled_key),
  redis.call('ZCARD', running_key),
  redis.call('ZCARD', dead_key),
  redis.call('ZCARD', succeeded_key),
  meta[1] == '1' and '1' or '0',
  meta[2] or '',
  meta[3] or '',
  redis.call('HGETALL', totals_key),
  latency,
  redis.call('ZCARD', prefix .. 'waiting'),
}
