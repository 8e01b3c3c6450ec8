-- lib/events.lua: job state changes published on relayq:{<q>}:events for live views
-- (the server's SSE stream). One message per script call, not per job:
-- {"queue": <q>, "state": <new state>, "ids": [<job id>, ...]}. Fire-and-forget (Pub/Sub).

-- Written by hand, not by cjson: every part is JSON-safe as it is (a queue name is letters,
-- digits, '_' and '-', as keys_problem checks; a state is a word; ids are digits), and
-- encoding a table costs about as much as the rest of a small enqueue.
local function emit(prefix, queue, state, ids)
  if #ids == 0 then return end
  redis.call('PUBLISH', prefix .. 'events', '{"queue":"' .. queue .. '","state":"' .. state ..
    '","ids":["' .. table.concat(ids, '","') .. '"]}')
end
