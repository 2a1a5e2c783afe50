-- APPLY_BATCH: many revocations through the one apply path in one script call (the worker's).
-- KEYS = the 8 {rev} keys, then the publishers' budget keys; ARGV = n, then n groups of the 11
-- APPLY_REVOCATION arguments (kind, value, before, until, epoch, id, source, reason, at, cap,
-- budget index). Returns n results: a log id, false (nothing changed) or 'over_capacity' (that
-- item refused, the others go on). The event path: user/all ``before`` values ahead of the
-- server's clock are clamped to it.
-- (Flat arguments: splitting joined strings in Lua costs Redis twice the time per entry.)
local K = rev_keys()
local out = {}
for i = 0, tonumber(ARGV[1]) - 1 do
  local a = 2 + 11 * i
  out[i + 1] = apply_revocation(K, {kind = ARGV[a], value = ARGV[a + 1],
    before = ARGV[a + 2], till = ARGV[a + 3], epoch = ARGV[a + 4], id = ARGV[a + 5],
    source = ARGV[a + 6], reason = ARGV[a + 7], at = ARGV[a + 8], cap = ARGV[a + 9],
    budget = KEYS[tonumber(ARGV[a + 10])], clamp = true})
end
return out
