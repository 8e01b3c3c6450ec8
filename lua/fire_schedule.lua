-- fire_schedule.lua: make the jobs of a schedule's due ticks and move it on to its next tick,
-- in one atomic step.
--
-- Redis cannot evaluate cron, so the caller (relayq/schedules.py) reads the schedule
-- (due_schedules.lua), computes which ticks to fire under its misfire policy and the tick after
-- them, and sends them with the revision and next tick it read. This script is a
-- compare-and-set on those two: a firer that lost the race (the tick was taken), or a schedule
-- changed since it was read, finds them moved and writes nothing ('conflict'). So each tick
-- becomes one job however many firers run, and a retried call (the reply was lost) can never
-- make a second one. Ticks must also come after the last tick ever fired (`last_tick`) and be
-- due on the Redis clock: a tick fires at most once even across redefinitions.
--
-- KEYS[1] relayq:{<q>}:meta       HASH  queue settings (as enqueue.lua: the jobs are made
--                                        by lib/jobs.lua, the same code)
-- KEYS[2] relayq:{<q>}:prios      ZSET  priorities with a non-empty ready list
-- KEYS[3] relayq:{<q>}:scheduled  ZSET  job id by due time (ms)
-- KEYS[4] relayq:{<q>}:totals     HASH  lifetime counters
-- KEYS[5] relayq:{<q>}:seq        STRING id sequence
-- KEYS[6] relayq:{<q>}:wake       LIST  wake-up token for idle workers
-- KEYS[7] relayq:{<q>}:due_schedules  ZSET  active schedule id by next tick (ms)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name
-- ARGV[3] schedule id
-- ARGV[4] expected revision
-- ARGV[5] expected next tick ('' while it is still to be computed)
-- ARGV[6] the new next tick (epoch ms) or 'end' (no tick is left: end_at passed)
-- ARGV[7] number of ticks to fire N (0..BATCH_LIMIT), then ARGV[8 ..] the N ticks (epoch ms,
--         increasing). Each makes one job from the template, with schedule_id and tick_at.
--
-- Reply: {'ok', id_1, ..., id_N}  the jobs made
--    or  {'conflict', message}    the schedule moved on or changed since it was read: nothing
--                                 written
--    or  {'not_found', message}   no such schedule
--    or  {'invalid_argument' | 'payload_too_large' | 'invalid_payload', message}: nothing
--        written (a template the queue's settings now refuse)

--@include lib/jobs.lua
--@include lib/schedule.lua

local bad_keys = keys_problem(7, 2)
if bad_keys then return {'invalid_argument', bad_keys} end
local k = {meta = KEYS[1], prios = KEYS[2], scheduled = KEYS[3], totals = KEYS[4],
           seq = KEYS[5], wake = KEYS[6]}
local due_key = KEYS[7]
local prefix, queue, id = ARGV[1], ARGV[2], ARGV[3]
local key, key_err = schedule_key(prefix, id)
if not key then return {'invalid_argument', key_err} end
local s = redis.call('HMGET', key, 'rev', 'next', 'tpl', 'last_tick', 'paused')
if not s[1] then return {'not_found', 'no schedule ' .. id} end
if ARGV[4] ~= s[1] or ARGV[5] ~= s[2] or s[5] == '1' then
  return {'conflict', 'the schedule changed or its tick was taken'}
end
local n, e = int_arg(ARGV[7], 'tick count', 0, BATCH_LIMIT)
if e then return {'invalid_argument', e} end
if #ARGV ~= 7 + n then return {'invalid_argument', 'expected ' .. n .. ' ticks'} end
local now = now_ms()
local ticks = {}
local last = tonumber(s[4]) or -1
for i = 1, n do
  local tick, te = int_arg(ARGV[7 + i], 'tick', last + 1, now)
  if te then
    return {'invalid_argument', te .. ' (ticks increase, are due, and come after the last fired)'}
  end
  ticks[i] = tick
  last = tick
end
local new_next = ARGV[6]
if new_next ~= 'end' then
  local nn, ne = int_arg(new_next, 'next tick', last + 1, MAX_TIME_MS)
  if ne then return {'invalid_argument', ne} end
  new_next = nn
end
local settings = job_settings(k.meta)
local template = cjson.decode(s[3])
local jobs = {}
for i, tick in ipairs(ticks) do
  local job, je, status = check_job(template, 0, now, settings)
  if not job then return {status or 'invalid_argument', 'template: ' .. je} end
  job.extra = {'sc', id, 'ta', ms_str(tick)}
  jobs[i] = job
end

-- writes below
local made = create_jobs(prefix, queue, k, jobs, now, settings, {})
local reply = {'ok'}
for i = 1, #made, 3 do reply[#reply + 1] = made[i] end
local fields = {'next', new_next == 'end' and 'end' or ms_str(new_next)}
if #jobs > 0 then
  for _, v in ipairs({'last_run', ms_str(now), 'last_job', reply[#reply],
                      'last_tick', ms_str(ticks[#ticks])}) do
    fields[#fields + 1] = v
  end
end
redis.call('HSET', key, unpack(fields))
if new_next == 'end' then
  redis.call('ZREM', due_key, id)
else
  redis.call('ZADD', due_key, new_next, id)
end
return reply
