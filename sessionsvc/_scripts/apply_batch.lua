-- APPLY_BATCH: many revocations through the one apply path in one script call (the worker's).
-- KEYS = the 8 {rev} keys; ARGV = one string per revocation: the 9 APPLY_REVOCATION arguments
-- (kind, value, before, until, epoch, id, source, reason, at) joined by "\31" (unit separator,
-- which validated events cannot contain). Returns one log id (or false) per revocation.
local K = rev_keys()
local out = {}
for i = 1, #ARGV do
  local a = {}
  for part in string.gmatch(ARGV[i] .. '\31', '([^\31]*)\31') do a[#a + 1] = part end
  if #a ~= 9 then error('ERR batch item ' .. i .. ' has ' .. #a .. ' parts, not 9') end
  out[i] = apply_revocation(K, {kind = a[1], value = a[2], before = a[3], till = a[4],
    epoch = a[5], id = a[6], source = a[7], reason = a[8], at = a[9]})
end
return out
