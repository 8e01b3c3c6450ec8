-- heartbeat.lua: extend the leases of running jobs (one or many in one call).
--
-- Fenced: only the current holder extends a lease. The new deadline is now + visibility_ms,
-- counted on the Redis clock. Each reply also says whether the job's cancel was requested
-- (cancel.lua): the worker learns it from the round trip it makes anyway.
--
-- KEYS[1] relayq:{<q>}:running  ZSET  job id by lease deadline (ms)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] lease length in ms from now (1..MAX_VISIBILITY_MS)
-- ARGV[3 + 2*(i-1) ...] per job: id, lease token
--
-- Reply: {'ok', status_1, deadline_ms_1, cancel_1, ..., status_N, deadline_ms_N, cancel_N}
--        status 'ok' (deadline = the new lease deadline) | 'not_found' | 'lease_lost' (deadline -1)
--        cancel 1 when the job's cancel was requested, else 0
--    or  {'invalid_argument', message}

--@include lib/clock.lua
--@include lib/args.lua
--@include lib/lease.lua

local bad_keys = keys_problem(1, 1)
if bad_keys then return {'invalid_argument', bad_keys} end

local running_key, prefix = KEYS[1], ARGV[1]
local visibility, err = int_arg(ARGV[2], 'visibility_ms', 1, MAX_VISIBILITY_MS)
if not visibility then return {'invalid_argument', err} end
if (#ARGV - 2) % 2 ~= 0 or #ARGV == 2 then
  return {'invalid_argument', 'expected id, lease pairs'}
end

local deadline = now_ms() + visibility
local deadline_str = ms_str(deadline)
-- writes below (each job's fence is checked just before its own write)
local reply = {'ok'}
for a = 3, #ARGV, 2 do
  local id, lease = ARGV[a], ARGV[a + 1]
  local job_key = prefix .. 'job:' .. id
  local status, _, _, _, cancel_requested = check_lease(job_key, lease)
  if status == 'ok' then
    redis.call('HSET', job_key, 'ld', deadline_str)
    redis.call('ZADD', running_key, deadline_str, id)
    reply[#reply + 1] = status
    reply[#reply + 1] = deadline
    reply[#reply + 1] = cancel_requested and 1 or 0
  else
    reply[#reply + 1] = status
    reply[#reply + 1] = -1
    reply[#reply + 1] = 0
  end
end
return reply
