-- progress.lua: a running job reports how far it got (current_job().progress in a handler).
--
-- Fenced like heartbeat: only the holder of the job's lease writes. Stores the fraction (`pg`)
-- and the optional info (`pi`, JSON text at most the queue's max_payload_bytes) on the job and
-- appends a 'progress' entry (p = fraction, i = info) to the queue's event log. The reply also
-- says whether the job's cancel was requested, as a heartbeat does.
--
-- KEYS[1] relayq:{<q>}:meta  HASH  queue settings (max_payload_bytes)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name (for events)
-- ARGV[3] job id
-- ARGV[4] lease token
-- ARGV[5] fraction done, a number in [0, 1]
-- ARGV[6] info: JSON text, or '' for none
--
-- Reply: {'ok', cancel}  cancel 1 when the job's cancel was requested, else 0
--    or  {'not_found'} | {'lease_lost', current_state}
--    or  {'invalid_argument' | 'payload_too_large' | 'invalid_payload', message}: nothing written

--@include lib/args.lua
--@include lib/config.lua
--@include lib/lease.lua
--@include lib/events.lua

local bad_keys = keys_problem(1, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, prefix, queue = KEYS[1], ARGV[1], ARGV[2]
local id, err = str_arg(ARGV[3], 'job id', MAX_JOB_ID_DIGITS)
if not id then return {'invalid_argument', err} end
local fraction
fraction, err = num_arg(ARGV[5], 'progress', 0, 1)
if not fraction then return {'invalid_argument', err} end
local info = ARGV[6] or ''
if info ~= '' then
  local max = read_config(meta_key, {'max_payload_bytes'}).max_payload_bytes
  local ok, e, refusal = json_arg(info, 'progress info', max)
  if not ok then return {refusal or 'invalid_argument', e} end
end
local job_key = prefix .. 'job:' .. id
local status, state, _, _, cancel_requested = check_lease(job_key, ARGV[4] or '')
if status == 'not_found' then return {'not_found'} end
if status ~= 'ok' then return {status, state} end

-- writes below
if info ~= '' then
  redis.call('HSET', job_key, 'pg', ARGV[5], 'pi', info)
else
  redis.call('HSET', job_key, 'pg', ARGV[5])
  redis.call('HDEL', job_key, 'pi')
end
emit(prefix, queue, 'progress', {id}, 'p', ARGV[5], 'i', info)
return {'ok', cancel_requested and 1 or 0}
