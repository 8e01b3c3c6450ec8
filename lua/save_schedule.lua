-- save_schedule.lua: save one periodic schedule of a queue: an upsert by id that writes nothing
-- when the definition, the paused state and the origin are what is stored already.
--
-- A schedule is a hash relayq:{<q>}:schedule:<id> (fields: docs/data-model.md); the SET
-- relayq:{<q>}:schedules lists every id and the ZSET relayq:{<q>}:due_schedules holds the
-- active ones by their next tick (ms; 0 while the next tick is still to be computed, which the
-- next firer does: relayq/schedules.py). Cron is evaluated in Python, never here: this script
-- stores what Python checked, and checks what it can again. A change of the definition, or a
-- resume, raises the revision `rev` and starts the timetable from now, so that a firing
-- computed from the old state (fire_schedule.lua compares `rev`) does nothing.
--
-- KEYS[1] relayq:{<q>}:meta           HASH  queue settings (the template is checked against them)
-- KEYS[2] relayq:{<q>}:schedules      SET   every schedule id of the queue
-- KEYS[3] relayq:{<q>}:due_schedules  ZSET  active schedule id by next tick (ms)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name
-- ARGV[3] schedule id
-- ARGV[4] definition (JSON text: what the schedule does; compared as text, Python writes it
--         canonically)
-- ARGV[5] template: a JSON array of the 11 job fields of enqueue.lua (lib/jobs.lua)
-- ARGV[6] start_at (epoch ms) or ''
-- ARGV[7] paused: '1', '0', or '' (keep it; a new schedule is active)
-- ARGV[8] origin: '' (an API call) or 'app' (an @app.task of a worker)
--
-- Reply: {'ok', outcome, revision} with outcome created | updated | unchanged (nothing written)
--    or  {'invalid_argument' | 'payload_too_large' | 'invalid_payload', message}: nothing written.

--@include lib/jobs.lua
--@include lib/schedule.lua

local bad_keys = keys_problem(3, 2)
if bad_keys then return {'invalid_argument', bad_keys} end
local meta_key, ids_key, due_key = KEYS[1], KEYS[2], KEYS[3]
if #ARGV ~= 8 then return {'invalid_argument', 'expected 8 arguments'} end
local prefix, id, definition, template, paused, origin =
  ARGV[1], ARGV[3], ARGV[4], ARGV[5], ARGV[7], ARGV[8]

local key, key_err = schedule_key(prefix, id)
if not key then return {'invalid_argument', key_err} end
if definition == '' or not pcall(cjson.decode, definition) then
  return {'invalid_argument', 'the definition is not JSON'}
end
local start_at, e = int_arg(ARGV[6], 'start_at', 0, MAX_TIME_MS, -1)
if e then return {'invalid_argument', e} end
if paused ~= '' and paused ~= '0' and paused ~= '1' then
  return {'invalid_argument', 'paused must be 0, 1 or empty'}
end
local now = now_ms()
local ok, fields = pcall(cjson.decode, template)
if not ok or type(fields) ~= 'table' or #fields ~= job_fields then
  return {'invalid_argument',
          string.format('the template must be a JSON array of %d job fields', job_fields)}
end
local _, job_err, status = check_job(fields, 0, now, job_settings(meta_key))
if job_err then return {status or 'invalid_argument', 'template: ' .. job_err} end
local current = redis.call('HMGET', key, 'rev', 'def', 'paused', 'origin')
local rev = tonumber(current[1])
if paused == '' then paused = current[3] or '0' end
if rev and current[2] == definition and current[3] == paused and current[4] == origin then
  return {'ok', 'unchanged', rev}
end

-- writes below
local outcome = rev and 'updated' or 'created'
rev = (rev or 0) + 1
local now_str = ms_str(now)
local out = {'rev', rev, 'paused', paused, 'origin', origin, 'updated', now_str}
if current[2] ~= definition then
  -- what fires changed: ticks count from now, on the new timetable (computed by a firer)
  for _, v in ipairs({'def', definition, 'tpl', template, 'after', now_str,
                      'base', ms_str(start_at >= 0 and start_at or now), 'next', ''}) do
    out[#out + 1] = v
  end
elseif current[3] == '1' and paused == '0' then
  -- resumed: the ticks of the pause are not made up for
  for _, v in ipairs({'after', now_str, 'next', ''}) do out[#out + 1] = v end
end
if outcome == 'created' then out[#out + 1] = 'created'; out[#out + 1] = now_str end
redis.call('HSET', key, unpack(out))
redis.call('SADD', ids_key, id)
if paused == '1' then
  redis.call('ZREM', due_key, id)
elseif redis.call('HGET', key, 'next') == '' then
  redis.call('ZADD', due_key, 0, id)  -- due at once: the next firer computes its next tick
end
return {'ok', outcome, rev}
