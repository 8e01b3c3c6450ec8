-- ack.lua: finish running jobs successfully (one or many in one call).
--
-- Fenced: only the holder of the job's current lease may ack it. An ack repeated by the same
-- holder after it already succeeded (a retry after a lost reply) answers 'ok' again and changes
-- nothing. The job keeps its result and expires after the queue's succeeded retention, with its
-- attempt history if it has one (relayq:{<q>}:history:<id>: the succeeding attempt itself is
-- not recorded there, it is the job's started_at, finished_at and worker).
--
-- A job whose cancel was requested while it ran (cancel.lua) ends `cancelled`, not succeeded:
-- the cancel wins over a handler that finished anyway. Its result, if any, is kept; its status
-- in the reply is 'cancelled' (again for the same holder's repeated ack).
--
-- KEYS[1] relayq:{<q>}:meta       HASH  queue settings (succeeded_ttl_ms)
-- KEYS[2] relayq:{<q>}:running    ZSET  job id by lease deadline (ms)
-- KEYS[3] relayq:{<q>}:succeeded  ZSET  job id by finish time (ms)
-- KEYS[4] relayq:{<q>}:totals     HASH  lifetime counters
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name (for events)
-- ARGV[3] largest result accepted, bytes
-- ARGV[4 + 3*(i-1) ...] per job: id, lease token, result (JSON text, or '' for null)
--
-- Reply: {'ok', status_1, ..., status_N}, each 'ok', 'cancelled', 'not_found' or 'lease_lost'
--    or  {'invalid_argument' | 'payload_too_large' | 'invalid_payload', message}: nothing written.

--@include lib/clock.lua
--@include lib/args.lua
--@include lib/config.lua
--@include lib/lease.lua
--@include lib/finish.lua
--@include lib/history.lua
--@include lib/events.lua
--@include lib/deps.lua
--@include lib/groups.lua

local bad_keys = keys_problem(4, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local meta_key, running_key, succeeded_key, totals_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, queue = ARGV[1], ARGV[2]
local max_result, err = int_arg(ARGV[3], 'max result bytes', 0, MAX_PAYLOAD_BYTES)
if not max_result then return {'invalid_argument', err} end
if (#ARGV - 3) % 3 ~= 0 or #ARGV == 3 then
  return {'invalid_argument', 'expected id, lease, result triples'}
end
for a = 4, #ARGV, 3 do
  if ARGV[a + 2] ~= '' then
    local ok, e, refusal = json_arg(ARGV[a + 2], 'result', max_result)
    if not ok then return {refusal or 'invalid_argument', e} end
  end
end

local now = now_ms()
local config = read_config(meta_key, {'succeeded_ttl_ms', 'max_running'})
-- writes below (each job's fence is checked just before its own write)
local reply, done, indexed, cancelled, parents, ended = {'ok'}, {}, {}, {}, {}, {}
local now_str = ms_str(now)
for a = 4, #ARGV, 3 do
  local id, lease, result = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local job_key = prefix .. 'job:' .. id
  local status, state, same_holder, has_history, cancel_requested, has_children, group =
    check_lease(job_key, lease)
  if status == 'ok' then
    ended[#ended + 1] = group
    finish(job_key, cancel_requested and 'cancelled' or 'succeeded', now,
      config.succeeded_ttl_ms, result ~= '' and {'res', result} or nil,
      has_history and history_key(prefix, id) or nil)
    if cancel_requested then
      cancelled[#cancelled + 1] = id
      status = 'cancelled'
    else
      done[#done + 1] = id
      indexed[#indexed + 1] = now_str
      indexed[#indexed + 1] = id
    end
    if has_children then -- workflows: settled below, after this call's own events
      parents[#parents + 1] = {id, cancel_requested and 'cancelled' or 'succeeded', result}
    end
  elseif same_holder and (state == 'succeeded' or state == 'cancelled') then
    status = state == 'succeeded' and 'ok' or 'cancelled'
  end
  reply[#reply + 1] = status
end
if #done > 0 then
  redis.call('ZREM', running_key, unpack(done))
  redis.call('ZADD', succeeded_key, unpack(indexed))
  redis.call('HINCRBY', totals_key, 'succeeded', #done)
  trim_index(succeeded_key, now, config.succeeded_ttl_ms)
end
if #cancelled > 0 then
  redis.call('ZREM', running_key, unpack(cancelled))
  redis.call('HINCRBY', totals_key, 'cancelled', #cancelled)
end
slots_freed(prefix, ended, config.max_running) -- fair queues (lib/groups.lua)
emit(prefix, queue, 'succeeded', done)
emit(prefix, queue, 'cancelled', cancelled)
for _, p in ipairs(parents) do deps_lib().finished(prefix, queue, p[1], p[2], p[3], now) end
return reply
