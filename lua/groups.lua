-- groups.lua: a page of a queue's groups (fair queues, lib/groups.lua), the largest backlog
-- first, with their ready and running counts and limits; and the queue's group figures (read
-- only).
--
-- KEYS[1] relayq:{<q>}:meta  HASH  max_running, group_max_running, group_rate, group_burst
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name
-- ARGV[3] most groups (1..MAX_GROUPS_PAGE)
-- ARGV[4] offset: the cursor, groups already listed (0..)
--
-- Reply: {'ok', total, with_ready, limited, throttled, {defaults: max_running,
--         group_max_running, group_rate, group_burst}, next_offset or '',
--         group_1, {ready, running, max_running, rate, burst, state}, ...}
--        own limits are '' when the group has none; state: 'ready' (in the round robin),
--        'limited' (at its concurrency limit), 'throttled' (waiting for a token) or 'idle'
--    or  {'invalid_argument', message}

--@include lib/args.lua
--@include lib/groups.lua

local bad_keys = keys_problem(1, 2)
if bad_keys then return {'invalid_argument', bad_keys} end
local meta_key, prefix = KEYS[1], ARGV[1]
local limit, err = int_arg(ARGV[3], 'limit', 1, MAX_GROUPS_PAGE)
if not limit then return {'invalid_argument', err} end
local offset
offset, err = int_arg(ARGV[4], 'cursor', 0, MAX_RUNNING_LIMIT * 1000, 0)
if not offset then return {'invalid_argument', err} end

local index, parked = prefix .. 'groups', prefix .. 'gparked'
local total = redis.call('ZCARD', index)
local page = redis.call('ZREVRANGE', index, offset, offset + limit - 1, 'WITHSCORES')
local reply = {'ok', total, redis.call('ZCOUNT', index, 1, '+inf'),
  redis.call('ZCOUNT', parked, '+inf', '+inf'), redis.call('ZCOUNT', parked, '-inf', '(+inf'),
  redis.call('HMGET', meta_key, 'max_running', 'group_max_running', 'group_rate', 'group_burst'),
  (offset + #page / 2 < total) and tostring(offset + #page / 2) or ''}
for i = 1, #page, 2 do
  local g = page[i]
  local h = redis.call('HMGET', fair().key(prefix, g), 'run', 'max', 'rate', 'burst', 'at')
  local state = 'idle'
  if h[5] == 'r' then state = 'ready'
  elseif h[5] == 'p' then
    state = redis.call('ZSCORE', parked, g) == 'inf' and 'limited' or 'throttled'
  end
  reply[#reply + 1] = g
  reply[#reply + 1] = {page[i + 1], h[1] or '0', h[2] or '', h[3] or '', h[4] or '', state}
end
return reply
