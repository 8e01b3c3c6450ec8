-- outbox_done.lua: drop facts of this queue's outbox that have been applied in their child's
-- queue (workflows, docs/workflows.md), and the outbox itself once it is empty, so that
-- finished graphs leave no key behind. Dropping an entry twice is harmless.
--
-- KEYS[1] relayq:{<q>}:outbox  STREAM  facts for children in other queues (lib/deps.lua)
-- ARGV[1..] entry ids
--
-- Reply: {'ok', removed}

if #KEYS ~= 1 or not string.match(KEYS[1], '^relayq:{[%w_%-]+}:outbox$') then
  return {'invalid_argument', 'expected the outbox key of one queue'}
end
if #ARGV == 0 then return {'invalid_argument', 'expected entry ids'} end
for _, entry in ipairs(ARGV) do
  if not string.match(entry, '^%d+%-%d+$') then return {'invalid_argument', 'invalid entry id'} end
end
-- writes below
local removed = redis.call('XDEL', KEYS[1], unpack(ARGV))
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return {'ok', removed}
