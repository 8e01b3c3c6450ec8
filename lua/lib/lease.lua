-- lib/lease.lua: lease fencing, the one check behind heartbeat, ack, nack, release and progress.
-- A claim writes a fresh token into the job's `l` field; only its holder may finish the job.

-- Returns 'ok' when job_key is running under `lease`; otherwise 'not_found' or 'lease_lost',
-- plus the job's current state and whether `lease` is still the job's last token (true when the
-- same holder already finished it: lets ack and nack answer a retried call idempotently), and,
-- read in the same call, whether the job has an attempt history (lib/history.lua) and whether
-- its cancel was requested (`cr`, set by cancel.lua on a running job), whether it has
-- children waiting on it (`ch`, workflows: lib/deps.lua), and its group (`g`, fair queues: ''
-- for none).
local function check_lease(job_key, lease)
  local fields = redis.call('HMGET', job_key, 's', 'l', 'h', 'cr', 'ch', 'g')
  local state, token = fields[1], fields[2]
  if not state then return 'not_found', nil, false end
  if token ~= lease or lease == '' then return 'lease_lost', state, false end
  if state ~= 'running' then return 'lease_lost', state, true end
  return 'ok', state, true, fields[3] == '1', fields[4] == '1', fields[5] == '1', fields[6] or ''
end
