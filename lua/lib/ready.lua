-- lib/ready.lua: the ready index. One LIST per priority (relayq:{<q>}:ready:<p>, FIFO: pushed at
-- the tail, claimed from the head) and a ZSET relayq:{<q>}:prios of the priorities whose list is
-- non-empty, so that a claim finds the highest priority in O(log 256) and pops in O(1).
-- A job with a group (fair queues) is indexed by its group instead: lib/groups.lua.

--@include lib/groups.lua

local function ready_key(prefix, priority)
  return prefix .. 'ready:' .. priority
end

-- Makes job `id` of `priority` (and `group`, if any) claimable: at the tail (FIFO), or at the head when `front`
-- (a job handed back by the reaper or a draining worker goes before newer ones).
-- A ready list is non-empty exactly when its priority is in prios, so the priority is added
-- only when the push made the list (its new length equals what was pushed).
local function push_ready(prefix, prios_key, id, priority, front, group)
  if group and group ~= '' then return fair().push(prefix, group, id, priority, front) end
  if redis.call(front and 'LPUSH' or 'RPUSH', ready_key(prefix, priority), id) == 1 then
    redis.call('ZADD', prios_key, priority, priority)
  end
end

-- Appends ids (in order) to the ready list of `priority`.
local function push_ready_many(prefix, prios_key, ids, priority)
  if redis.call('RPUSH', ready_key(prefix, priority), unpack(ids)) == #ids then
    redis.call('ZADD', prios_key, priority, priority)
  end
end

-- Removes job `id` from the ready list of `priority`; true when it was there.
local function remove_ready(prefix, prios_key, id, priority, group)
  if group and group ~= '' then return fair().remove(prefix, group, id, priority) end
  local key = ready_key(prefix, priority)
  local removed = redis.call('LREM', key, 1, id)
  if redis.call('LLEN', key) == 0 then redis.call('ZREM', prios_key, priority) end
  return removed > 0
end

-- Pops up to `n` ids, highest priority first, FIFO within a priority.
local function pop_ready(prefix, prios_key, n)
  local ids = {}
  while #ids < n do
    local top = redis.call('ZREVRANGE', prios_key, 0, 0)
    if #top == 0 then break end
    local key = ready_key(prefix, top[1])
    local got = redis.call('LPOP', key, n - #ids)
    if got then
      for _, id in ipairs(got) do ids[#ids + 1] = id end
    end
    if redis.call('LLEN', key) == 0 then redis.call('ZREM', prios_key, top[1]) end
  end
  return ids
end
