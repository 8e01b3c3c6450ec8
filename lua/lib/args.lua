-- lib/args.lua: argument checks shared by the scripts. Each returns the parsed value, or
-- nil plus a message (and, from json_arg, a refusal status of its own); callers turn them into
-- a {status or 'invalid_argument', msg} reply.

-- An integer in [lo, hi] given as a decimal string; '' or nil gives `default`.
local function int_arg(value, name, lo, hi, default)
  if value == nil or value == '' then
    if default ~= nil then return default end
    return nil, name .. ' is required'
  end
  if not string.match(value, '^%-?%d+$') then
    return nil, name .. ' must be an integer, got ' .. string.format('%q', string.sub(value, 1, 40))
  end
  local n = tonumber(value)
  if n < lo or n > hi then
    return nil, string.format('%s must be between %d and %d, got %s', name, lo, hi, value)
  end
  return n
end

-- A non-negative number (may be fractional) given as a decimal string; '' or nil gives `default`.
local function num_arg(value, name, lo, hi, default)
  if value == nil or value == '' then
    if default ~= nil then return default end
    return nil, name .. ' is required'
  end
  local n = tonumber(value)
  if n == nil or n ~= n or n < lo or n > hi then
    return nil, string.format('%s must be a number between %s and %s', name, tostring(lo), tostring(hi))
  end
  return n
end

-- A string of at most `max` bytes; '' allowed only when `optional`.
local function str_arg(value, name, max, optional)
  if value == nil or value == '' then
    if optional then return '' end
    return nil, name .. ' is required'
  end
  if #value > max then
    return nil, string.format('%s must be at most %d bytes', name, max)
  end
  return value
end

-- A JSON document (payload or result) of at most `max` bytes. Refused as 'payload_too_large'
-- or 'invalid_payload' (the third value), so that callers never read the message.
local function json_arg(value, name, max)
  if value == nil or value == '' then return nil, name .. ' is required' end
  if #value > max then
    return nil, string.format('%s is %d bytes, over the limit of %d', name, #value, max),
      'payload_too_large'
  end
  if not pcall(cjson.decode, value) then
    return nil, name .. ' is not valid JSON', 'invalid_payload'
  end
  return value
end

-- What is wrong with the keys of a call, or nil: exactly `n` KEYS, all of one queue, and where
-- a script takes them (`named` = 1 or 2), ARGV[1] the key prefix and ARGV[2] the name of that
-- same queue. Checked first, because a missing key would fail a script halfway through its
-- writes, and a key of another queue would mix two queues (and two hash slots on a cluster).
local function keys_problem(n, named)
  if #KEYS ~= n then return string.format('expected %d keys, got %d', n, #KEYS) end
  local own = string.match(KEYS[1], '^relayq:{[%w_%-]+}:')
  if not own then return 'KEYS[1] is not a key of a relayq queue' end
  -- string.find with plain = true compares in place: no new string per key
  for i = 2, n do
    if string.find(KEYS[i], own, 1, true) ~= 1 then
      return string.format('KEYS[%d] belongs to another queue than KEYS[1]', i)
    end
  end
  if named >= 1 and ARGV[1] ~= own then return 'ARGV[1] must be the key prefix of KEYS[1]' end
  local name = ARGV[2] or ''
  if named >= 2 and (#name ~= #own - 10 or string.find(own, name, 9, true) ~= 9) then
    return 'ARGV[2] must be the queue name of KEYS[1]'
  end
  return nil
end
