-- lib/events.lua: job state changes published on relayq:{<q>}:events for live views
-- (the server's SSE stream). One message per script call, not per job:
-- {"queue": <q>, "state": <new state>, "ids": [<job id>, ...]}. Fire-and-forget (Pub/Sub).

local function emit(prefix, queue, state, ids)
  if #ids == 0 then return end
  redis.call('PUBLISH', prefix .. 'events',
    cjson.encode({queue = queue, state = state, ids = ids}))
end
