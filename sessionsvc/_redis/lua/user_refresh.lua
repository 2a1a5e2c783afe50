-- USER_REFRESH (Redis Cluster: the {u} step of a refresh, after REV_READ). K = idx, session,
-- fence. A = now, sid, jti (the presented token's), new_jti, new_iat, refresh_ttl,
-- idle_timeout, overlap, leeway, then what REV_READ answered: user_before, all_before,
-- sid_revoked, jti_revoked, kid_revoked ('1': revoked).
-- The answers of REFRESH (refresh.lua), and {'pending', op, cutoff, origin} when a
-- logout-everywhere of the user is under way (fence_open.lua; the caller finishes it and starts
-- again). The fence's ``before`` counts as the user's: a refresh whose REV_READ came before a
-- logout-everywhere's revocation, and whose rotation comes after the fence, is refused. A
-- session that is ending (marked ``ending`` by a logout, an eviction or a detected reuse before
-- its revocation, which lives in {rev}, another slot) answers {'ending', reason}: the caller
-- revokes it, then ends it (USER_END). Reuse marks it so (``refresh_reuse``).
local idx, skey = K.idx, K.session
local now, sid = tonumber(A.now), A.sid
local s = refresh_view(idx, skey, sid)
if s == nil then return {'missing'} end
if s.ending then return {'ending', s.ending} end
local pending, fence_before = fence_state(K.fence)
if pending then return {'pending', unpack(pending)} end
local created = tonumber(s.created)
local user_before = math.max(num(A.user_before) or 0, fence_before or 0)
local all_before = num(A.all_before) or 0
local kind = nil
if A.sid_revoked == '1' then kind = 'session'
elseif A.jti_revoked == '1' then kind = 'token'
elseif created < user_before then kind = 'user'
elseif created < all_before then kind = 'all'
elseif A.kid_revoked == '1' then kind = 'key'
elseif now >= expiry(s) then kind = 'expired'
end
if kind ~= nil then return refused(idx, skey, sid, kind) end
if reused(s, now) then
  redis.call('HSET', skey, 'ending', 'refresh_reuse')
  return {'ending', 'refresh_reuse'}
end
return rotate(skey, s, now, math.max(user_before, all_before))
