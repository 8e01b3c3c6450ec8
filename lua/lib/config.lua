-- lib/config.lua: per-queue settings kept in relayq:{<q>}:meta; an absent one takes its
-- default from SETTING_DEFAULTS (relayq/limits.py).

-- Reads the named settings from the meta hash; absent ones take their defaults. The name
-- 'paused' may be asked for too: config.paused is then true or false.
local function read_config(meta_key, names)
  local values = redis.call('HMGET', meta_key, unpack(names))
  local config = {}
  for i, name in ipairs(names) do
    if name == 'paused' then
      config.paused = values[i] == '1'
    else
      config[name] = tonumber(values[i]) or SETTING_DEFAULTS[name]
    end
  end
  return config
end
