-- lib/backoff.lua: full-jitter exponential backoff (AWS architecture blog, "Exponential Backoff
-- And Jitter"): delay = uniform(0, min(cap, base * 2^attempt)). `jitter` is a fraction in [0, 1)
-- supplied by the caller, so the script stays a pure function of its input.

local function backoff_ms(attempt, base_ms, cap_ms, jitter)
  local ceiling = base_ms * math.pow(2, math.min(attempt, 62))
  if ceiling > cap_ms then ceiling = cap_ms end
  return math.floor(ceiling * jitter)
end
