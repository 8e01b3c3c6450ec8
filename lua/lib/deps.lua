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
--@include lib/finish.lua
--@include lib/events.lua
--@include lib/ready.lua

-- Everything below is made on first use, by deps_lib(): the scripts that end a job include
-- this file but, for a job without children, never call it, and making a dozen closures on
-- every call of such a script costs about 2 us (measured: most of an ack of one job is 25 us).
local deps_made

local function deps_lib()
  if deps_made then return deps_made end
  local deps = {}

  function deps.deps_key(prefix, id) return prefix .. 'deps:' .. id end
  function deps.children_key(prefix, id) return prefix .. 'children:' .. id end

  -- The queue and local id of a full job id ('<queue>.<digits>'), or nil.
  function deps.split_job_id(full)
    return string.match(full, '^([%w_%-]+)%.(%d+)$')
  end

  -- Per script call: what became ready, scheduled or cancelled (emitted once, by flush), and
  -- the queue's settings, read once.
  local acc = {ready = {}, scheduled = {}, cancelled = {}}
  local conf

  local function config(prefix)
    if not conf then
      conf = read_config(prefix .. 'meta', {'succeeded_ttl_ms', 'max_payload_bytes', 'paused'})
    end
    return conf
  end

  -- A waiting job whose last parent fact came: ready (the tail of its priority's list, or of
  -- its group's: lib/ready.lua), or scheduled while its due time is ahead.
  local function release(prefix, id, job_key, due, priority, group, now)
    redis.call('ZREM', prefix .. 'waiting', id)
    redis.call('DEL', deps.deps_key(prefix, id))
    if due and due > now then
      redis.call('HSET', job_key, 's', 'scheduled')
      redis.call('ZADD', prefix .. 'scheduled', due, id)
      acc.scheduled[#acc.scheduled + 1] = id
      return
    end
    redis.call('HSET', job_key, 's', 'ready')
    push_ready(prefix, prefix .. 'prios', id, priority or '0', false, group)
    acc.ready[#acc.ready + 1] = id
  end

  -- Applies one fact to waiting job `id` of this queue: parent `parent` (full id) ended with
  -- `outcome` (succeeded | dead | cancelled | missing) and `result` (JSON text or ''). A fact
  -- that came before (the parent is no longer in deps:<id>) or for a job no longer waiting
  -- changes nothing. Answers 'applied', or 'cancelled' and has_children when the fact
  -- cancelled the job; nil when it changed nothing.
  function deps.apply(prefix, id, parent, outcome, result, now)
    local job_key = prefix .. 'job:' .. id
    local f = redis.call('HMGET', job_key, 's', 'opf', 'ch', 'r', 'pr', 'rb', 'g')
    if f[1] ~= 'waiting' then return nil end
    local pending = deps.deps_key(prefix, id)
    if redis.call('SREM', pending, parent) == 0 then return nil end
    if outcome == 'succeeded' then
      if result == nil or result == '' then result = 'null' end -- it succeeded with no result
      local kept = (tonumber(f[6]) or 0) + #result
      -- parent results are bounded, together, by the queue's payload limit; beyond it a
      -- parent's result is left out (the child can still read it from the parent)
      if kept <= config(prefix).max_payload_bytes then
        redis.call('HSET', job_key, 'R:' .. parent, result, 'rb', kept)
      end
    elseif f[2] ~= 'run' then
      redis.call('DEL', pending)
      redis.call('ZREM', prefix .. 'waiting', id)
      redis.call('HSET', job_key, 'err', 'parent ' .. parent .. ' ' ..
        (outcome == 'missing' and 'does not exist' or ('ended ' .. outcome)))
      finish(job_key, 'cancelled', now, config(prefix).succeeded_ttl_ms, nil, nil)
      redis.call('HINCRBY', prefix .. 'totals', 'cancelled', 1)
      acc.cancelled[#acc.cancelled + 1] = id
      return 'cancelled', f[3] == '1'
    end
    if redis.call('SCARD', pending) == 0 then
      release(prefix, id, job_key, tonumber(f[4]), f[5], f[7], now)
    end
    return 'applied'
  end

  -- Job `id` of this queue just ended with `outcome` and has children (`ch`): each child in
  -- this queue gets the fact now, in this same script; each child in another queue (another
  -- Cluster slot) gets it through this queue's outbox. A child cancelled by it passes
  -- `cancelled` on to its own children, the same way (a work list, not recursion). Children
  -- are taken in creation order, so that children released together stay FIFO.
  function deps.settle(prefix, queue, id, outcome, result, now)
    local work = {{id, outcome, result or ''}}
    local i = 1
    while i <= #work do
      local pid, pout, pres = work[i][1], work[i][2], work[i][3]
      i = i + 1
      local ckey = deps.children_key(prefix, pid)
      local children = redis.call('SMEMBERS', ckey)
      table.sort(children)
      if #children > 0 then
        local ttl = redis.call('PTTL', prefix .. 'job:' .. pid)
        if ttl > 0 then redis.call('PEXPIRE', ckey, ttl) end
        local parent = queue .. '.' .. pid
        for _, child in ipairs(children) do
          local cq, cid = deps.split_job_id(child)
          if cq == queue then
            local applied, has_children = deps.apply(prefix, cid, parent, pout, pres, now)
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

  -- Emits what the facts of this call changed (once per state) and wakes a worker (as
  -- lib/wake.lua's wake does).
  function deps.flush(prefix, queue)
    if #acc.ready > 0 and not config(prefix).paused
        and redis.call('LLEN', prefix .. 'wake') == 0 then
      redis.call('RPUSH', prefix .. 'wake', '1')
    end
    emit(prefix, queue, 'ready', acc.ready)
    emit(prefix, queue, 'scheduled', acc.scheduled)
    emit(prefix, queue, 'cancelled', acc.cancelled)
    acc = {ready = {}, scheduled = {}, cancelled = {}}
  end

  -- The hook of the scripts that end a job (ack, nack, reap, release, cancel), called only for
  -- a job whose `ch` field is '1': settles its children and emits what they became.
  function deps.finished(prefix, queue, id, outcome, result, now)
    deps.settle(prefix, queue, id, outcome, result, now)
    deps.flush(prefix, queue)
  end

  deps_made = deps
  return deps
end
