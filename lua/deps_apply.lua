-- deps_apply.lua: apply facts "parent P ended with outcome O (result R)" to waiting jobs of this
-- queue (workflows, docs/workflows.md; the logic is lib/deps.lua's). Idempotent: a fact applied
-- before, or about a job no longer waiting, changes nothing, so facts are delivered at least
-- once (from another queue's outbox, or from link.lua's answer) and still counted once. The last
-- fact of a job makes it ready (or scheduled); a failed parent cancels it (unless its
-- on_parent_failure is 'run'), and that cancel passes on to its own children.
--
-- KEYS[1] relayq:{<q>}:meta  HASH  queue settings (paused, retention, max_payload_bytes)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name (for events)
-- ARGV[3 + 4*(i-1) ...] per fact: the child's local id, the parent's full id, the outcome
--   (succeeded | dead | cancelled | missing), the parent's result (JSON text, '' for none)
--
-- Reply: {'ok', applied}  (facts that changed something)
--    or  {'invalid_argument', message}: nothing written.

--@include lib/args.lua
--@include lib/deps.lua

local deps = deps_lib()
local bad_keys = keys_problem(1, 2)
if bad_keys then return {'invalid_argument', bad_keys} end
local prefix, queue = ARGV[1], ARGV[2]
if #ARGV < 6 or (#ARGV - 2) % 4 ~= 0 then
  return {'invalid_argument', 'expected child, parent, outcome, result quadruples'}
end
local outcomes = {succeeded = true, dead = true, cancelled = true, missing = true}
for a = 3, #ARGV, 4 do
  if not string.match(ARGV[a], '^%d+$') or #ARGV[a] > MAX_JOB_ID_DIGITS
      or not deps.split_job_id(ARGV[a + 1]) or not outcomes[ARGV[a + 2]] then
    return {'invalid_argument', 'invalid fact'}
  end
end

local now = now_ms()
-- writes below
local applied = 0
for a = 3, #ARGV, 4 do
  local id = ARGV[a]
  local done, has_children = deps.apply(prefix, id, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], now)
  if done then applied = applied + 1 end
  if done == 'cancelled' and has_children then
    deps.settle(prefix, queue, id, 'cancelled', '', now)
  end
end
deps.flush(prefix, queue)
return {'ok', applied}
