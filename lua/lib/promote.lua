-- lib/promote.lua: scheduled -> ready for jobs whose due time has come.

--@include lib/ready.lua
--@include lib/events.lua

-- Moves up to `limit` due jobs, earliest first; returns how many moved, and whether any of
-- them has a group (fair queues).
local function promote_due(prefix, queue, scheduled_key, prios_key, now, limit)
  local due = redis.call('ZRANGEBYSCORE', scheduled_key, '-inf', now, 'LIMIT', 0, limit)
  if #due == 0 then return 0 end
  local moved, grouped = {}, false
  for _, id in ipairs(due) do
    local job_key = prefix .. 'job:' .. id
    local fields = redis.call('HMGET', job_key, 's', 'pr', 'g')
    if fields[1] then -- a hash that is gone (deleted by hand) is only dropped from the index
      redis.call('HSET', job_key, 's', 'ready')
      push_ready(prefix, prios_key, id, fields[2] or '0', false, fields[3])
      grouped = grouped or fields[3] ~= nil
      moved[#moved + 1] = id
    end
  end
  redis.call('ZREM', scheduled_key, unpack(due))
  emit(prefix, queue, 'ready', moved)
  return #moved, grouped
end

-- Milliseconds until the earliest scheduled job is due (0 if overdue), or -1 if none.
local function next_due_in(scheduled_key, now)
  local first = redis.call('ZRANGE', scheduled_key, 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  return math.max(0, tonumber(first[2]) - now)
end
