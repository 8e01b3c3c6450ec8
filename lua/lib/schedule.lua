-- lib/schedule.lua: what the schedule scripts share: the check of a schedule id (the pattern of
-- SCHEDULE_ID_PATTERN, [A-Za-z0-9_.:-]{1,MAX_SCHEDULE_ID_BYTES}, checked again here because
-- Redis does not roll back) and the key of a schedule's hash.

--@include lib/args.lua

-- The key relayq:{<q>}:schedule:<id>, or nil and what is wrong with the id.
local function schedule_key(prefix, id)
  local ok, err = str_arg(id, 'schedule id', MAX_SCHEDULE_ID_BYTES)
  if not ok then return nil, err end
  if string.find(id, '[^%w_%.:%-]') then
    return nil, 'a schedule id has only A-Z a-z 0-9 _ . : -'
  end
  return prefix .. 'schedule:' .. id
end
