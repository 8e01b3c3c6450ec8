-- lib/dead.lua: which dead jobs a dead-letter operation (requeue, purge) acts on.

--@include lib/args.lua

-- From ARGV[3] (limit) and ARGV[4..] (ids): the ids given, or, with none, the oldest `limit`
-- dead ones. Returns ids, explicit (true when ids were given); or nil plus a message.
local function dead_targets(dead_key)
  local limit, err = int_arg(ARGV[3], 'limit', 1, MAX_SWEEP_LIMIT)
  if not limit then return nil, err end
  local ids = {}
  for a = 4, #ARGV do ids[#ids + 1] = ARGV[a] end
  if #ids > 0 then return ids, true end
  return redis.call('ZRANGE', dead_key, 0, limit - 1), false
end
