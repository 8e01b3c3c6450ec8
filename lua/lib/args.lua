-- lib/args.lua: argument checks shared by the scripts. Each returns the parsed value, or
-- nil plus a message; callers turn the message into an {'invalid_argument', msg} reply.

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

-- A JSON document (payload or result) of at most `max` bytes.
local function json_arg(value, name, max)
  if value == nil or value == '' then return nil, name .. ' is required' end
  if #value > max then
    return nil, string.format('%s is %d bytes, over the limit of %d', name, #value, max)
  end
  if not pcall(cjson.decode, value) then
    return nil, name .. ' is not valid JSON'
  end
  return value
end
