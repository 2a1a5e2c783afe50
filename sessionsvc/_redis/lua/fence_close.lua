-- FENCE_CLOSE (Redis Cluster: the last step of a logout-everywhere, once its user revocation
-- is applied in {rev}). K = idx, fence. A = op (the operation fence_open opened), before (its
-- cutoff), abort ('1': the revocation was refused, end nothing), ttl_ms.
-- Ends every session created before the cutoff, records the cutoff as the fence's ``before``
-- (grow-only) and removes this operation's entry only (another one under way stays pending).
-- Idempotent. Returns the number of sessions it ended (fence_open counted them for its
-- operation).
local b, n = tonumber(A.before), 0
if A.abort ~= '1' then
  for _, sid in ipairs(redis.call('ZRANGE', K.idx, 0, -1)) do
    local skey = session_key(K.idx, sid)
    local created = num(redis.call('HGET', skey, 'created'))
    if created == nil or created < b then
      n = n + redis.call('DEL', skey)
      redis.call('ZREM', K.idx, sid)
    end
  end
  local old = num(redis.call('HGET', K.fence, 'before'))
  if old == nil or b > old then redis.call('HSET', K.fence, 'before', A.before) end
end
redis.call('HDEL', K.fence, 'p:' .. A.op, 'o:' .. A.op)
if redis.call('EXISTS', K.fence) == 1 then fence_ttl(K.fence, tonumber(A.ttl_ms)) end
return n
