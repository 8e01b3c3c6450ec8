-- lib/config.lua: per-queue settings kept in relayq:{<q>}:meta, with the defaults of the SPEC.

local CONFIG_DEFAULTS = {
  max_attempts = 5,
  backoff_base_ms = 1000,
  backoff_cap_ms = 3600000,
  succeeded_ttl_ms = 86400000,     -- finished jobs: 24 h
  dead_ttl_ms = 604800000,         -- dead letters: 7 days (or until purged or requeued)
  idempotency_ttl_ms = 86400000,   -- idempotency keys: 24 h
  max_payload_bytes = 1048576,     -- 1 MiB
}

-- Reads the named settings from the meta hash; absent ones take their defaults. The name
-- 'paused' may be asked for too: config.paused is then true or false.
local function read_config(meta_key, names)
  local values = redis.call('HMGET', meta_key, unpack(names))
  local config = {}
  for i, name in ipairs(names) do
    if name == 'paused' then
      config.paused = values[i] == '1'
    else
      config[name] = tonumber(values[i]) or CONFIG_DEFAULTS[name]
    end
  end
  return config
end
