-- lib/groups.lua: fair queues (docs/fair-queues.md). Jobs enqueued with a `group` (a tenant id,
-- say) are served in round robin over the groups, each group under its own concurrency limit
-- and token bucket; priority and FIFO hold within a group. A queue that never saw a group never
-- runs a line of this file beyond a test of one meta field (`grouped`).
--
-- Keys, all built from the queue's prefix (per-group keys, like ready:<p>; one hash tag):
--   meta            HASH  `grouped` ('1' once a group was seen), `gready` (ready jobs that have
--                         a group), the settings max_running, group_max_running, group_rate,
--                         group_burst (0 or absent: no limit)
--   gring           LIST  the round robin: each group that has ready jobs and may be claimed
--                         from now, at most once, and '' (group_none) for the jobs without a
--                         group (their index is the plain ready:<p> lists). A claim takes the
--                         head and moves it to the tail (LMOVE): O(1) per job.
--   gparked         ZSET  groups with ready jobs kept out of the ring: at their concurrency
--                         limit (score +inf; put back when a slot frees), or throttled (score:
--                         when their next token is due, ms; put back by a claim after that)
--   groups          ZSET  group -> its ready count: every group with ready or running jobs or
--                         limits of its own (the listing, and the metrics' groups with ready jobs)
--   group:<g>       HASH  `run` running jobs, `at` where it is ('r' ring, 'p' parked, absent:
--                         no ready job), `max`, `rate`, `burst` (its own limits, overriding the
--                         queue's group_* defaults), `tok`, `tat` (its bucket: tokens, when)
--   gprios:<g>      ZSET  priorities with a non-empty ready list of the group
--   gready:<p>:<g>  LIST  ready local ids of the group of priority p, oldest at the head
-- A job's hash holds its group in the field `g`, written only when it has one.
--
-- Invariant: a group with ready jobs is in exactly one of gring, gparked (its `at` says which);
-- one without is in neither, except that a group emptied by a cancel may stay in the ring until
-- the next claim reaches it and drops it (O(1) there, where removing it from the list is not).

--@include lib/clock.lua
--@include lib/wake.lua

-- Cost: every script pays, on every call, for creating the functions it includes. So all of
-- this file but the two functions every caller needs is made by `fair()` on first use: a
-- script that meets no group pays for three closures (fair, group_arg, slots_freed), not thirty.

local group_none = ''
-- The characters of a group name: relayq/limits.py's GROUP_PATTERN (tests/core/test_groups.py)
local group_chars = '^[%w_%.:%-]+$'

-- A group name as an argument: '' (none) when optional, or nil plus a message.
local function group_arg(value, optional)
  if value == nil or value == '' then
    if optional then return '' end
    return nil, 'group is required'
  end
  if #value > MAX_GROUP_BYTES or not string.match(value, group_chars) then
    return nil, 'group must be 1 to ' .. MAX_GROUP_BYTES ..
      ' characters of A-Z a-z 0-9 _ . : -, got ' .. string.format('%q', string.sub(value, 1, 40))
  end
  return value
end

local fair_lib
-- The fair-queue functions (made once per script call, on first use).
local function fair()
  if fair_lib then return fair_lib end
  local function group_key(prefix, g) return prefix .. 'group:' .. g end
  local function group_prios_key(prefix, g) return prefix .. 'gprios:' .. g end
  local function group_ready_key(prefix, p, g) return prefix .. 'gready:' .. p .. ':' .. g end

  -- The queue's defaults for every group: {max = n, rate = r, burst = b}, 0 meaning none.
  local function group_defaults(prefix)
    local d = redis.call('HMGET', prefix .. 'meta', 'group_max_running', 'group_rate', 'group_burst')
    return {max = tonumber(d[1]) or 0, rate = tonumber(d[2]) or 0, burst = tonumber(d[3]) or 0}
  end

  -- A group's concurrency limit (0: none) from its own `max` and the defaults.
  local function group_limit(own_max, defaults)
    return tonumber(own_max) or defaults.max
  end

  local function park(prefix, g, gkey, score)
    redis.call('HSET', gkey, 'at', 'p')
    redis.call('ZADD', prefix .. 'gparked', score, g)
  end

  -- A group with no ready job, no running job and no limits of its own is forgotten (its bucket,
  -- if any, lives on until it would be full again anyway).
  local function forget_if_idle(prefix, g, gkey)
    local h = redis.call('HMGET', gkey, 'run', 'at', 'max', 'rate', 'burst', 'tok', 'tat')
    if (tonumber(h[1]) or 0) > 0 or h[2] or h[3] or h[4] or h[5] then return end
    redis.call('ZREM', prefix .. 'groups', g)
    if not h[6] then redis.call('DEL', gkey); return end
    local d = group_defaults(prefix)
    local rate = d.rate > 0 and d.rate or 1
    redis.call('PEXPIRE', gkey, math.max(1, math.ceil(d.burst * 1000 / rate)))
  end

  -- Count n more ready jobs of group g (already pushed to its lists); a group that had none goes
  -- into the ring, or is parked when it is at its concurrency limit.
  local function group_added(prefix, g, n)
    local meta_key = prefix .. 'meta'
    redis.call('ZINCRBY', prefix .. 'groups', n, g)
    redis.call('HINCRBY', meta_key, 'gready', n)
    local gkey = group_key(prefix, g)
    local h = redis.call('HMGET', gkey, 'at', 'run', 'max')
    if h[1] then return end
    if redis.call('HSETNX', meta_key, 'grouped', '1') == 1 then
      redis.call('RPUSH', prefix .. 'gring', group_none) -- the jobs without a group take part
    end
    redis.call('PERSIST', gkey)
    local limit = group_limit(h[3], group_defaults(prefix))
    if limit > 0 and (tonumber(h[2]) or 0) >= limit then
      park(prefix, g, gkey, 'inf')
    else
      redis.call('HSET', gkey, 'at', 'r')
      redis.call('RPUSH', prefix .. 'gring', g)
    end
  end

  -- Makes job `id` of group g and `priority` ready: at the tail, or the head when `front`.
  local function group_push(prefix, g, id, priority, front)
    if redis.call(front and 'LPUSH' or 'RPUSH', group_ready_key(prefix, priority, g), id) == 1 then
      redis.call('ZADD', group_prios_key(prefix, g), priority, priority)
    end
    group_added(prefix, g, 1)
  end

  -- Appends ids (in order) to group g's ready list of `priority`.
  local function group_push_many(prefix, g, ids, priority)
    if redis.call('RPUSH', group_ready_key(prefix, priority, g), unpack(ids)) == #ids then
      redis.call('ZADD', group_prios_key(prefix, g), priority, priority)
    end
    group_added(prefix, g, #ids)
  end

  -- Removes ready job `id` from group g (cancel); a group left with no ready job leaves gparked
  -- (the ring drops it when a claim reaches it). True when the job was there.
  local function group_remove(prefix, g, id, priority)
    local key = group_ready_key(prefix, priority, g)
    local removed = redis.call('LREM', key, 1, id)
    if removed == 0 then return false end
    if redis.call('LLEN', key) == 0 then redis.call('ZREM', group_prios_key(prefix, g), priority) end
    redis.call('ZINCRBY', prefix .. 'groups', -1, g)
    redis.call('HINCRBY', prefix .. 'meta', 'gready', -1)
    local gkey = group_key(prefix, g)
    if redis.call('EXISTS', group_prios_key(prefix, g)) == 0
        and redis.call('HGET', gkey, 'at') == 'p' then
      redis.call('ZREM', prefix .. 'gparked', g)
      redis.call('HDEL', gkey, 'at')
      forget_if_idle(prefix, g, gkey)
    end
    return true
  end

  -- A running job of group g ended (ack, nack, reap, release, a cancel that ends it): its slot is
  -- given back, and a group parked at its limit goes back into the ring (and wakes a worker).
  local function group_done(prefix, g)
    local gkey = group_key(prefix, g)
    local run = redis.call('HINCRBY', gkey, 'run', -1)
    if run < 0 then redis.call('HSET', gkey, 'run', 0); run = 0 end
    local h = redis.call('HMGET', gkey, 'at', 'max')
    if h[1] == 'p' then
      local limit = group_limit(h[2], group_defaults(prefix))
      if (limit == 0 or run < limit)
          and redis.call('ZSCORE', prefix .. 'gparked', g) == 'inf' then
        redis.call('ZREM', prefix .. 'gparked', g)
        redis.call('HSET', gkey, 'at', 'r')
        redis.call('RPUSH', prefix .. 'gring', g)
        wake(prefix .. 'wake')
      end
    elseif not h[1] and run == 0 then
      forget_if_idle(prefix, g, gkey)
    end
  end

  -- Every parked group back into the ring (after a change of limits: a claim parks again those
  -- still held back). O(parked groups): an operator's action.
  local function unpark_all(prefix)
    local parked = redis.call('ZRANGE', prefix .. 'gparked', 0, -1)
    for _, g in ipairs(parked) do
      redis.call('HSET', group_key(prefix, g), 'at', 'r')
      redis.call('RPUSH', prefix .. 'gring', g)
    end
    redis.call('DEL', prefix .. 'gparked')
    if #parked > 0 then wake(prefix .. 'wake') end
  end

  -- Takes group g (the ring's tail, just turned) out of the ring when it may not be claimed from
  -- now: at its concurrency limit (parked until a slot frees), or out of tokens (parked until its
  -- next one is due). True when it was.
  local function hold_back(prefix, g, gkey, run, limit, tokens, rate, now)
    local score
    if limit > 0 and run >= limit then
      score = 'inf'
    elseif tokens and tokens < 1 then
      score = now + math.ceil((1 - tokens) * 1000 / rate)
    else
      return false
    end
    redis.call('RPOP', prefix .. 'gring')
    park(prefix, g, gkey, score)
    return true
  end

  -- The claim of a grouped queue: up to n ready ids, one per turn of the ring, each group within
  -- its limit and bucket. `pop_plain(k)` pops k ids of the jobs without a group. Returns the ids,
  -- their groups (group_none for none), and, when nothing could be taken because every group that
  -- has ready jobs is throttled, the ms until the first one has a token (else nil).
  local function claim_grouped(prefix, n, now, pop_plain)
    local ring, parked = prefix .. 'gring', prefix .. 'gparked'
    local due = redis.call('ZRANGEBYSCORE', parked, '-inf', now, 'LIMIT', 0, GROUP_UNPARK_PER_CLAIM)
    if #due > 0 then
      for _, g in ipairs(due) do redis.call('HSET', group_key(prefix, g), 'at', 'r') end
      redis.call('RPUSH', ring, unpack(due))
      redis.call('ZREM', parked, unpack(due))
    end
    local defaults
    local ids, groups = {}, {}
    local moved = true -- something happened since the last time the turn came to group_none
    while #ids < n do
      local g = redis.call('LMOVE', ring, ring, 'LEFT', 'RIGHT')
      if not g then break end
      if g == group_none then
        local got = pop_plain(1)
        if #got == 1 then
          ids[#ids + 1] = got[1]
          groups[#groups + 1] = group_none
          moved = true
        elseif not moved or redis.call('LLEN', ring) == 1 then
          break -- a whole turn of the ring gave nothing
        else
          moved = false
        end
      else
        moved = true
        defaults = defaults or group_defaults(prefix)
        local gkey = group_key(prefix, g)
        local h = redis.call('HMGET', gkey, 'run', 'max', 'rate', 'burst', 'tok', 'tat')
        local run, limit = tonumber(h[1]) or 0, group_limit(h[2], defaults)
        local rate, burst = tonumber(h[3]) or defaults.rate, tonumber(h[4]) or defaults.burst
        local tokens
        if rate > 0 then
          tokens = math.min(burst,
            (tonumber(h[5]) or burst) + (now - (tonumber(h[6]) or now)) * rate / 1000)
        end
        local top = redis.call('ZREVRANGE', group_prios_key(prefix, g), 0, 0)[1]
        if not top then -- emptied by a cancel
          redis.call('RPOP', ring)
          redis.call('HDEL', gkey, 'at')
          if run == 0 then forget_if_idle(prefix, g, gkey) end
        elseif not hold_back(prefix, g, gkey, run, limit, tokens, rate, now) then
          -- (held back here only when its limits changed while it was in the ring)
          local list = group_ready_key(prefix, top, g)
          local id = redis.call('LPOP', list)
          if redis.call('LLEN', list) == 0 then
            redis.call('ZREM', group_prios_key(prefix, g), top)
          end
          redis.call('ZINCRBY', prefix .. 'groups', -1, g)
          redis.call('HINCRBY', prefix .. 'meta', 'gready', -1)
          if redis.call('HGET', prefix .. 'job:' .. id, 's') == 'ready' then
            ids[#ids + 1] = id
            groups[#groups + 1] = g
            run = run + 1
            if tokens then
              tokens = tokens - 1
              redis.call('HSET', gkey, 'run', run, 'tok', tostring(tokens), 'tat', ms_str(now))
            else
              redis.call('HSET', gkey, 'run', run)
            end
          end
          -- where the group goes now that it is at the tail of the ring
          if redis.call('EXISTS', group_prios_key(prefix, g)) == 0 then
            redis.call('RPOP', ring)
            redis.call('HDEL', gkey, 'at')
          else
            hold_back(prefix, g, gkey, run, limit, tokens, rate, now)
          end
        end
      end
    end
    local retry
    if #ids == 0 then
      local first = redis.call('ZRANGE', parked, 0, 0, 'WITHSCORES')
      if #first > 0 and first[2] ~= 'inf' then retry = math.max(1, tonumber(first[2]) - now) end
    end
    return ids, groups, retry
  end

  -- Whether a grouped queue still has jobs a claim could take now (for passing a wake-up on).
  local function group_ring_busy(prefix)
    return redis.call('LLEN', prefix .. 'gring') > 1
  end

  fair_lib = {key = group_key, added = group_added, push = group_push,
              push_many = group_push_many, remove = group_remove, done = group_done,
              unpark_all = unpark_all, forget_if_idle = forget_if_idle,
              claim = claim_grouped, ring_busy = group_ring_busy}
  return fair_lib
end

-- Running jobs ended (ack, nack, reap, release): `ended` lists the group of each ('' for none).
-- Their groups' slots are given back; with a queue-wide `max_running`, a waiting worker is woken.
local function slots_freed(prefix, ended, max_running)
  for _, g in ipairs(ended) do
    if g ~= '' then fair().done(prefix, g) end
  end
  if #ended > 0 and (max_running or 0) > 0 then wake(prefix .. 'wake') end
end

