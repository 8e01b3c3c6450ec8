-- lib/history.lua: a job's attempt history, relayq:{<q>}:history:<id> (LIST, newest first, at
-- most HISTORY_LIMIT entries). Only attempts that did not succeed are recorded, by the scripts
-- that end them (nack, reap), so a job that succeeds at its first attempt costs nothing here.
-- The job hash's field `h` says a history exists (ack reads it with the lease, at no extra
-- call). The list lives as long as the hash: finish() gives it the hash's TTL, requeue clears
-- that TTL again, purge deletes it.

local function history_key(prefix, id)
  return prefix .. 'history:' .. id
end

-- `text` cut to at most `max` bytes, never inside a UTF-8 sequence.
local function cut_utf8(text, max)
  if #text <= max then return text end
  local cut = max
  while cut > 0 do
    local b = string.byte(text, cut + 1)
    if b < 0x80 or b >= 0xC0 then break end -- the first byte left out starts a character
    cut = cut - 1
  end
  return string.sub(text, 1, cut)
end

-- Records the attempt that just ended: the worker that ran it and when it started (the job's
-- `w` and `st`, or nil), when it ended (ms string), how (retried | reaped | dead) and its error.
local function record_attempt(prefix, id, job_key, worker, started, ended, outcome, error_text)
  local key = history_key(prefix, id)
  redis.call('LPUSH', key, cjson.encode({
    w = worker or '', st = started or '', f = ended, o = outcome,
    e = cut_utf8(error_text or '', MAX_HISTORY_ERROR_BYTES)}))
  redis.call('LTRIM', key, 0, HISTORY_LIMIT - 1)
  redis.call('HSET', job_key, 'h', '1')
end
