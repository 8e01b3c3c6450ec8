-- promote.lua: move scheduled jobs whose due time has passed to the tail of their ready list,
-- in due order. The claim script does the same on its way, so a delay is honoured even with no
-- promoter running; this script keeps the scheduled count true on an idle queue.
--
-- KEYS[1] relayq:{<q>}:scheduled  ZSET  job id by due time (ms)
-- KEYS[2] relayq:{<q>}:prios      ZSET  priorities with a non-empty ready list
-- KEYS[3] relayq:{<q>}:wake       LIST  wake-up token for idle workers
-- KEYS[4] relayq:{<q>}:meta       HASH  queue settings (paused)
-- ARGV[1] key prefix relayq:{<q>}:
-- ARGV[2] queue name (for events)
-- ARGV[3] most jobs to move (1..MAX_SWEEP_LIMIT)
--
-- Reply: {'ok', moved, next_due_in_ms}   (next_due_in_ms = -1 when nothing is scheduled)
--    or  {'invalid_argument', message}

--@include lib/clock.lua
--@include lib/args.lua
--@include lib/ready.lua
--@include lib/wake.lua
--@include lib/events.lua
--@include lib/promote.lua

local bad_keys = keys_problem(4, 2)
if bad_keys then return {'invalid_argument', bad_keys} end

local scheduled_key, prios_key, wake_key, meta_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local prefix, queue = ARGV[1], ARGV[2]
local limit, err = int_arg(ARGV[3], 'limit', 1, MAX_SWEEP_LIMIT)
if not limit then return {'invalid_argument', err} end

local now = now_ms()
-- writes below
local moved = promote_due(prefix, queue, scheduled_key, prios_key, now, limit)
if moved > 0 and redis.call('HGET', meta_key, 'paused') ~= '1' then wake(wake_key) end
return {'ok', moved, next_due_in(scheduled_key, now)}
