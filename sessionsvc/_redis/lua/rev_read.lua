-- REV_READ (Redis Cluster: the {rev} step a session operation reads first; no writes, so it
-- may run on a replica). K = sid, jti, user, all, kid. A = sub, jti, kid ('' for none);
-- A_MORE: session ids.
-- Returns {user before, global before, jti revoked (0/1), kid revoked (0/1), then per sid:
-- revoked (0/1)}; the befores as stored ('0' for none).
local out = {redis.call('HGET', K.user, A.sub) or '0', redis.call('HGET', K.all, 'before') or '0',
             0, 0}
if A.jti ~= '' and redis.call('ZSCORE', K.jti, A.jti) then out[3] = 1 end
if A.kid ~= '' then out[4] = redis.call('SISMEMBER', K.kid, A.kid) end
for i = 1, N_MORE do  -- (a user may have thousands: no unpack)
  out[#out + 1] = redis.call('ZSCORE', K.sid, more_arg(i)) and 1 or 0
end
return out
