-- IDP_ACCEPT: an identity provider's token, received by a worker's receiver, enters the IdP
-- intake once. K.stream the intake stream, K.claim the token's claim key (same slot:
-- {<ns>:events}:idp.jti:<digest of issuer and jti>). A.ttl_ms how long the jti is remembered,
-- ARGV from A_MORE on: field, value pairs. Returns the entry id, or false when the jti was
-- claimed already (a replay, or the same token sent twice). The XADD (the only command that
-- can fail) comes first; the claim names the entry, so the worker that applies it knows its
-- own delivery from a replay.
if redis.call('EXISTS', K.claim) == 1 then return false end
local id = redis.call('XADD', K.stream, '*', unpack(ARGV, A_MORE))
redis.call('SET', K.claim, K.stream .. ' ' .. id, 'PX', A.ttl_ms)
return id
