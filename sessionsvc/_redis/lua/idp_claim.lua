-- IDP_CLAIM: the worker, before it applies an identity provider's token, claims its jti for
-- the entry that carries it. K.claim the claim key, A.entry '<stream> <entry id>', A.ttl_ms.
-- Returns 'new' (claimed now), 'again' (claimed by this very entry before: a redelivery after
-- a crash, or an entry the receiver wrote) or 'replayed' (claimed by another entry).
local held = redis.call('GET', K.claim)
if not held then
  redis.call('SET', K.claim, A.entry, 'PX', A.ttl_ms)
  return 'new'
end
if held == A.entry then return 'again' end
return 'replayed'
