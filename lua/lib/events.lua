-- lib/events.lua: what a transition tells the world, from inside the transition itself.
--
-- 1. The queue's event log, relayq:{<q>}:log (a Redis Stream): one entry per script call and
--    new state, {s = <state>, ids = "<id>,<id>,..."} (progress adds p = fraction and i = info),
--    written in the same atomic call as the change it records, so a reader that follows the log
--    sees every change of the queue in order. Trimmed near the queue's `event_log_max` setting
--    (XADD MAXLEN ~: whole radix-tree nodes are dropped, so the log holds at least that many);
--    0 turns the log off. The key is built from the prefix, like a job's key: one hash tag.
-- 2. A Pub/Sub message on relayq:{<q>}:events, {"queue", "state", "ids"}: the server's event
--    hub hears it at once and fans it out (fire-and-forget; the log is what is durable).

-- The queue's log cap, read once per script call (nil until the first event).
local log_cap

-- Appends one entry (state, ids, then more name, value pairs) to the queue's event log.
local function log_event(prefix, state, ids, ...)
  if log_cap == nil then
    log_cap = tonumber(redis.call('HGET', prefix .. 'meta', 'event_log_max'))
      or SETTING_DEFAULTS.event_log_max
  end
  if log_cap == 0 then return end
  redis.call('XADD', prefix .. 'log', 'MAXLEN', '~', log_cap, '*', 's', state,
    'ids', table.concat(ids, ','), ...)
end

-- The message is written by hand, not by cjson: every part is JSON-safe as it is (a queue name
-- is letters, digits, '_' and '-', as keys_problem checks; a state is a word; ids are digits),
-- and encoding a table costs about as much as the rest of a small enqueue.
-- `...`: more name, value pairs for the log entry (progress: p, i).
local function emit(prefix, queue, state, ids, ...)
  if #ids == 0 then return end
  redis.call('PUBLISH', prefix .. 'events', '{"queue":"' .. queue .. '","state":"' .. state ..
    '","ids":["' .. table.concat(ids, '","') .. '"]}')
  log_event(prefix, state, ids, ...)
end
