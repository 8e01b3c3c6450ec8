-- trigger_schedule.lua: make one job of a periodic schedule now, paused or not, outside its
-- timetable (which stays as it is). The job is made from the schedule's template by the code of
-- enqueue.lua (lib/jobs.lua), with schedule_id and tick_at = now.
--
-- KEYS[1] relayq:{<q>}:meta       HASH  queue settings
-- KEYS[2] relayq:{<q>}:prios      ZSET  priorities with a non-empty ready list
-- KEYS[3] relayq:{<q>}:scheduled  ZSET  job id by due time (ms)
-- KEYS[4] relayq:{<q>}:totals     HASH  lifetime counters
-- KEYS[5] relayq:{<q>}:seq        STRING id sequence
-- KEYS[6] relayq:{<q>}:wake       LIST  wake-up token for idle workers
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name
-- ARGV[3] schedule id
--
-- Reply: {'ok', id}  the job made
--    or  {'not_found', message} | {'invalid_argument' | 'payload_too_large' |
--        'invalid_payload', message}: nothing written (a template the queue now refuses)

--@include lib/jobs.lua
--@include lib/schedule.lua

local bad_keys = keys_problem(6, 2)
if bad_keys then return {'invalid_argument', bad_keys} end
if #ARGV ~= 3 then return {'invalid_argument', 'expected 3 arguments'} end
local k = {meta = KEYS[1], prios = KEYS[2], scheduled = KEYS[3], totals = KEYS[4],
           seq = KEYS[5], wake = KEYS[6]}
local prefix, queue, id = ARGV[1], ARGV[2], ARGV[3]
local key, key_err = schedule_key(prefix, id)
if not key then return {'invalid_argument', key_err} end
local template = redis.call('HGET', key, 'tpl')
if not template then return {'not_found', 'no schedule ' .. id} end
local now = now_ms()
local settings = job_settings(k.meta)
local job, e, status = check_job(cjson.decode(template), 0, now, settings)
if not job then return {status or 'invalid_argument', 'template: ' .. e} end
job.extra = {'sc', id, 'ta', ms_str(now)}

-- writes below
local made = create_jobs(prefix, queue, k, {job}, now, settings, {})
redis.call('HSET', key, 'last_run', ms_str(now), 'last_job', made[1])
return {'ok', made[1]}
