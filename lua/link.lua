-- link.lua: list jobs of another queue as children of parents of this queue (workflows,
-- docs/workflows.md), or tell the caller how a parent already ended. Called after
-- enqueue_deps.lua made the children `waiting`; atomic with the parent's own end in this queue,
-- so exactly one of two things happens: the child is listed before the parent ends (and the
-- end's fact goes to the child through this queue's outbox), or the parent had ended and its
-- outcome is answered here (the caller applies it with deps_apply.lua in the child's queue).
-- Repeating a link is harmless (a set).
--
-- KEYS[1] relayq:{<q>}:meta  HASH  (names the queue; not read)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name
-- ARGV[3 + 2*(i-1) ...] per link: the parent's local id, the child's full id '<queue>.<n>'
--
-- Reply: {'ok', outcome_1, result_1, ...}: outcome 'pending' (listed; result ''), or the
--        parent's end 'succeeded' | 'dead' | 'cancelled' with its result ('' for none), or
--        'missing' (no such parent: it expired or never was)
--    or  {'invalid_argument', message}: nothing written.

--@include lib/args.lua
--@include lib/deps.lua

local deps = deps_lib()
local bad_keys = keys_problem(1, 2)
if bad_keys then return {'invalid_argument', bad_keys} end
local prefix = ARGV[1]
if #ARGV < 4 or (#ARGV - 2) % 2 ~= 0 then
  return {'invalid_argument', 'expected parent, child pairs'}
end
for a = 3, #ARGV, 2 do
  if not string.match(ARGV[a], '^%d+$') or #ARGV[a] > MAX_JOB_ID_DIGITS
      or not deps.split_job_id(ARGV[a + 1]) then
    return {'invalid_argument', 'invalid parent or child id'}
  end
end

-- writes below
local reply = {'ok'}
for a = 3, #ARGV, 2 do
  local pkey = prefix .. 'job:' .. ARGV[a]
  local p = redis.call('HMGET', pkey, 's', 'res')
  if not p[1] then
    reply[#reply + 1] = 'missing'
    reply[#reply + 1] = ''
  elseif p[1] == 'succeeded' or p[1] == 'dead' or p[1] == 'cancelled' then
    reply[#reply + 1] = p[1]
    reply[#reply + 1] = p[2] or ''
  else
    redis.call('SADD', deps.children_key(prefix, ARGV[a]), ARGV[a + 1])
    redis.call('HSET', pkey, 'ch', '1')
    reply[#reply + 1] = 'pending'
    reply[#reply + 1] = ''
  end
end
return reply
