-- schedule.lua: save, delete, pause or resume one periodic schedule of a queue.
--
-- A schedule is a hash relayq:{<q>}:schedule:<id> (fields: docs/data-model.md); the SET
-- relayq:{<q>}:schedules lists every id and the ZSET relayq:{<q>}:due_schedules holds the
-- active ones by their next tick (ms; 0 while the next tick is still to be computed, which the
-- next firer does: relayq/schedules.py). Cron is evaluated in Python, never here: this script
-- stores what Python checked, and checks it again (Redis does not roll a script back).
-- Every change of what fires (definition, pause, resume) raises the revision `rev`, so that a
-- firing computed from the old one (fire_schedule.lua compares it) does nothing.
--
-- KEYS[1] relayq:{<q>}:meta           HASH  queue settings (the template is checked against them)
-- KEYS[2] relayq:{<q>}:schedules      SET   every schedule id of the queue
-- KEYS[3] relayq:{<q>}:due_schedules  ZSET  active schedule id by next tick (ms)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name
-- ARGV[3] verb: set | delete | pause | resume
-- ARGV[4] schedule id (SCHEDULE_ID_PATTERN, checked by Python; at most MAX_SCHEDULE_ID_BYTES)
-- set only:
-- ARGV[5] definition (JSON text: what the schedule does; compared as text, Python writes it
--         canonically)
-- ARGV[6] template: a JSON array of the 10 job fields of enqueue.lua
-- ARGV[7] start_at (epoch ms) or ''
-- ARGV[8] paused: '1', '0', or '' (keep it; a new schedule is active)
-- ARGV[9] origin: '' (an API call) or 'app' (an @app.task of a worker)
--
-- Reply: {'ok', outcome, revision} with outcome created | updated | unchanged (nothing written)
--    or  {'not_found', message} (delete, pause, resume of an unknown id)
--    or  {'invalid_argument' | 'payload_too_large' | 'invalid_payload', message}: nothing written.

--@include lib/jobs.lua

local bad_keys = keys_problem(3, 2)
if bad_keys then return {'invalid_argument', bad_keys} end
local meta_key, ids_key, due_key = KEYS[1], KEYS[2], KEYS[3]
local prefix, verb, id = ARGV[1], ARGV[3], ARGV[4]

local id_ok, id_err = str_arg(id, 'schedule id', MAX_SCHEDULE_ID_BYTES)
if not id_ok then return {'invalid_argument', id_err} end
if string.find(id, '[^%w_%.:%-]') then return {'invalid_argument', 'bad schedule id'} end
local key = prefix .. 'schedule:' .. id
local now = now_ms()
local current = redis.call('HMGET', key, 'rev', 'def', 'paused', 'origin')
local rev = tonumber(current[1])

if verb == 'set' then
  if #ARGV ~= 9 then return {'invalid_argument', 'set takes 9 arguments'} end
  local definition, template, paused, origin = ARGV[5], ARGV[6], ARGV[8], ARGV[9]
  if definition == '' or not pcall(cjson.decode, definition) then
    return {'invalid_argument', 'the definition is not JSON'}
  end
  local start_at, e = int_arg(ARGV[7], 'start_at', 0, MAX_TIME_MS, -1)
  if e then return {'invalid_argument', e} end
  if paused ~= '' and paused ~= '0' and paused ~= '1' then
    return {'invalid_argument', 'paused must be 0, 1 or empty'}
  end
  local ok, fields = pcall(cjson.decode, template)
  if not ok or type(fields) ~= 'table' or #fields ~= job_fields then
    return {'invalid_argument', 'the template must be a JSON array of 10 job fields'}
  end
  local _, job_err, status = check_job(fields, 0, now, job_settings(meta_key))
  if job_err then return {status or 'invalid_argument', 'template: ' .. job_err} end
  if paused == '' then paused = current[3] or '0' end
  if rev and current[2] == definition and current[3] == paused and current[4] == origin then
    return {'ok', 'unchanged', rev}
  end
  -- writes below
  local outcome = rev and 'updated' or 'created'
  rev = (rev or 0) + 1
  local fields_out = {'rev', rev, 'paused', paused, 'origin', origin, 'updated', ms_str(now)}
  if current[2] ~= definition then
    -- what fires changed: ticks count from now, on the new timetable (computed by a firer)
    fields_out[#fields_out + 1] = 'def'; fields_out[#fields_out + 1] = definition
    fields_out[#fields_out + 1] = 'tpl'; fields_out[#fields_out + 1] = template
    fields_out[#fields_out + 1] = 'after'; fields_out[#fields_out + 1] = ms_str(now)
    fields_out[#fields_out + 1] = 'base'
    fields_out[#fields_out + 1] = ms_str(start_at >= 0 and start_at or now)
    fields_out[#fields_out + 1] = 'next'; fields_out[#fields_out + 1] = ''
  elseif current[3] == '1' and paused == '0' then
    -- resumed: the ticks of the pause are not made up for
    fields_out[#fields_out + 1] = 'after'; fields_out[#fields_out + 1] = ms_str(now)
    fields_out[#fields_out + 1] = 'next'; fields_out[#fields_out + 1] = ''
  end
  if not current[1] then
    fields_out[#fields_out + 1] = 'created'; fields_out[#fields_out + 1] = ms_str(now)
  end
  redis.call('HSET', key, unpack(fields_out))
  redis.call('SADD', ids_key, id)
  if paused == '1' then
    redis.call('ZREM', due_key, id)
  elseif redis.call('HGET', key, 'next') == '' then
    redis.call('ZADD', due_key, 0, id)  -- due at once: the next firer computes its next tick
  end
  return {'ok', outcome, rev}
end

if verb ~= 'delete' and verb ~= 'pause' and verb ~= 'resume' then
  return {'invalid_argument', 'unknown verb'}
end
if not rev then return {'not_found', 'no schedule ' .. id} end
if verb == 'delete' then
  -- writes below
  redis.call('DEL', key)
  redis.call('SREM', ids_key, id)
  redis.call('ZREM', due_key, id)
  return {'ok', 'deleted', rev}
end
local pause = verb == 'pause'
if (current[3] == '1') == pause then return {'ok', 'unchanged', rev} end
-- writes below
rev = rev + 1
if pause then
  redis.call('HSET', key, 'rev', rev, 'paused', '1', 'updated', ms_str(now))
  redis.call('ZREM', due_key, id)
else
  redis.call('HSET', key, 'rev', rev, 'paused', '0', 'updated', ms_str(now),
             'after', ms_str(now), 'next', '')
  redis.call('ZADD', due_key, 0, id)
end
return {'ok', pause and 'paused' or 'resumed', rev}
