-- lib/clock.lua: the one clock. Every deadline and due time comes from Redis TIME.

-- Milliseconds since the Unix epoch, as a Lua number (exact: below 2^53).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A millisecond count as a plain decimal string ("%d"), never in exponent form.
local function ms_str(ms)
  return string.format('%d', ms)
end
