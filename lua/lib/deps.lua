-- lib/deps.lua: job dependencies (workflows, docs/workflows.md). A job enqueued with parents
-- (`depends_on`) is `waiting` until each parent has finished; the fact "parent P finished with
-- outcome O (and result R)" is applied to it here, idempotently, in the child's own queue:
--
--   relayq:{<q>}:deps:<id>      SET    the child's parents (full ids) whose fact is still to come
--   relayq:{<q>}:children:<id>  SET    the parent's children (full ids); expires with the parent
--   relayq:{<q>}:waiting        ZSET   waiting jobs by creation time (counting, listing)
--   relayq:{<q>}:outbox         STREAM facts for children in other queues: c (child full id),
--                                      p (parent full id), o (outcome), r (result, if any);
--                                      moved by relayq/workflows.py, then deleted
--   relayq:{<q>}:linking        ZSET   children whose cross-queue parents are being linked, by
--                                      creation time (a crash before the links end is redone)
--
-- Job hash fields, written only for jobs that use them: `dp` (parents, comma-separated full
-- ids), `opf` ('run': run even if a parent failed), `ch` ('1': has children), `rb` (bytes of
-- parent results kept), `R:<parent full id>` (a parent's result, JSON text).
--
-- Every key is built from the queue's prefix (one hash tag), like lib/events.lua's log.

--@include lib/clock.lua
--@include lib/config.lua
--@include lib/ready.lua
--@include lib/wake.lua
--@include lib/finish.lua
--@include lib/events.lua

local function deps_key(prefix, id) return prefix .. 'deps:' .. id end
local function children_key(prefix, id) return prefix .. 'children:' .. id end

-- The queue and local id of a full job id ('<queue>.<digits>'), or nil.
local function split_job_id(full)
  return string.match(full, '^([%w_%-]+)%.(%d+)$')
end

-- Per script call: what became ready, scheduled or cancelled (emitted once, at the end), and
-- the queue settings read lazily.
local deps_acc = {ready = {}, scheduled = {}, cancelled = {}}
local deps_conf

local function deps_config(prefix)
  if not deps_conf then
    deps_conf = read_config(prefix .. 'meta', {'succeeded_ttl_ms', 'max_payload_bytes', 'paused'})
  end
  return deps_conf
end

-- A waiting job whose last parent fact came: ready, or scheduled while its due time is ahead.
local function deps_release(prefix, id, job_key, due, priority, now)
  redis.call('ZREM', prefix .. 'waiting', id)
  redis.call('DEL', deps_key(prefix, id))
  if due and due > now then
    redis.call('HSET', job_key, 's', 'scheduled')
    redis.call('ZADD', prefix .. 'scheduled', due, id)
    deps_acc.scheduled[#deps_acc.scheduled + 1] = id
  else
    redis.call('HSET', job_key, 's', 'ready')
    push_ready(prefix, prefix .. 'prios', id, priority or '0', false)
    deps_acc.ready[#deps_acc.ready + 1] = id
  end
end

-- Applies one fact to waiting job `id` of this queue: parent `parent` (full id) ended with
-- `outcome` (succeeded | dead | cancelled | missing) and `result` (JSON text or ''). A fact that
-- came before (the parent is no longer in deps:<id>) or for a job no longer waiting changes
-- nothing. Answers 'cancelled', has_children when the job was cancelled by it.
local function deps_apply(prefix, id, parent, outcome, result, now)
  local job_key = prefix .. 'job:' .. id
  local f = redis.call('HMGET', job_key, 's', 'opf', 'ch', 'r', 'pr', 'rb')
  if f[1] ~= 'waiting' then return nil end
  local pending = deps_key(prefix, id)
  if redis.call('SREM', pending, parent) == 0 then return nil end
  if outcome == 'succeeded' then
    if result ~= nil and result ~= '' then
      local kept = (tonumber(f[6]) or 0) + #result
      -- parent results are bounded, together, by the queue's payload limit; beyond it a
      -- parent's result is left out (the child can still read it from the parent)
      if kept <= deps_config(prefix).max_payload_bytes then
        redis.call('HSET', job_key, 'R:' .. parent, result, 'rb', kept)
      end
    end
  elseif f[2] ~= 'run' then
    redis.call('DEL', pending)
    redis.call('ZREM', prefix .. 'waiting', id)
    redis.call('HSET', job_key, 'err', 'parent ' .. parent .. ' ' ..
      (outcome == 'missing' and 'does not exist' or ('ended ' .. outcome)))
    finish(job_key, 'cancelled', now, deps_config(prefix).succeeded_ttl_ms, nil, nil)
    redis.call('HINCRBY', prefix .. 'totals', 'cancelled', 1)
    deps_acc.cancelled[#deps_acc.cancelled + 1] = id
    return 'cancelled', f[3] == '1'
  end
  if redis.call('SCARD', pending) == 0 then
    deps_release(prefix, id, job_key, tonumber(f[4]), f[5], now)
  end
  return 'applied'
end

-- Job `id` of this queue just finished with `outcome` and has children (`ch`): each child in
-- this queue gets the fact now, in this same script; each child in another queue (another
-- Cluster slot) gets it through this queue's outbox. A child cancelled by it passes
-- `cancelled` on to its own children, the same way (a work list, not recursion).
local function deps_settle(prefix, queue, id, outcome, result, now)
  local work = {{id, outcome, result or ''}}
  local i = 1
  while i <= #work do
    local pid, pout, pres = work[i][1], work[i][2], work[i][3]
    i = i + 1
    local ckey = children_key(prefix, pid)
    local children = redis.call('SMEMBERS', ckey)
    table.sort(children) -- creation order: children released together stay FIFO
    if #children > 0 then
      local ttl = redis.call('PTTL', prefix .. 'job:' .. pid)
      if ttl > 0 then redis.call('PEXPIRE', ckey, ttl) end
      local parent = queue .. '.' .. pid
      for _, child in ipairs(children) do
        local cq, cid = split_job_id(child)
        if cq == queue then
          local applied, has_children = deps_apply(prefix, cid, parent, pout, pres, now)
          if applied == 'cancelled' and has_children then
            work[#work + 1] = {cid, 'cancelled', ''}
          end
        elseif cq then
          if pres ~= '' then
            redis.call('XADD', prefix .. 'outbox', '*', 'c', child, 'p', parent, 'o', pout,
              'r', pres)
          else
            redis.call('XADD', prefix .. 'outbox', '*', 'c', child, 'p', parent, 'o', pout)
          end
        end
      end
    end
  end
end

-- Emits what the facts of this call changed (once per state) and wakes a worker.
local function deps_flush(prefix, queue)
  if #deps_acc.ready > 0 and not deps_config(prefix).paused then wake(prefix .. 'wake') end
  emit(prefix, queue, 'ready', deps_acc.ready)
  emit(prefix, queue, 'scheduled', deps_acc.scheduled)
  emit(prefix, queue, 'cancelled', deps_acc.cancelled)
  deps_acc = {ready = {}, scheduled = {}, cancelled = {}}
end

-- The hook of the scripts that end a job (ack, nack, reap, release, cancel): settles its
-- children when it has some (`has_children`: the job's `ch` field was '1'); nothing otherwise.
local function deps_finished(prefix, queue, id, outcome, result, has_children, now)
  if not has_children then return end
  deps_settle(prefix, queue, id, outcome, result, now)
  deps_flush(prefix, queue)
end
