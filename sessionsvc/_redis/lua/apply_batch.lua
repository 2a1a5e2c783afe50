-- APPLY_BATCH: many revocations through the one apply path in one script call (the worker's).
-- K = the 8 {rev} keys, then the publishers' budget keys; A.n revocations follow in ARGV, each
-- the fields of APPLY_REVOCATION (read by the generated ``revocation_at``). Returns n results: a
-- log id, false (nothing changed) or 'over_capacity' (that item refused, the others go on).
-- The event path: user/all ``before`` values ahead of the server's clock are clamped to it.
-- (Flat arguments: splitting joined strings in Lua costs Redis twice the time per entry.)
local out = {}
for i = 0, tonumber(A.n) - 1 do
  local r = revocation_at(A_MORE + REVOCATION_SIZE * i)
  r.clamp = true
  out[i + 1] = apply_revocation(K, r)
end
return out
