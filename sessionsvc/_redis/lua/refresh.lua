-- REFRESH: K = its {rev} keys, idx, session (the generated prelude: sessionsvc._redis.scripts).
-- A = now, sid, jti and kid (the presented token's), new_jti, new_iat, refresh_ttl,
--     idle_timeout, overlap, till (a revocation's until), epoch (candidate), leeway.
-- Returns {'missing'} | {'revoked', kind} | {'expired'} | {'reuse'} |
--         {'ahead', cutoff} (nothing written) |
--         {'ok', sub, claims, jti, iat, exp, cutoff} (the refresh token to hand out).
-- ``cutoff`` is the later of the user's and the global ``before`` (0 without): a session created
-- at or after it lives on, but tokens issued now must carry iat >= cutoff or validators reject
-- them. When the cutoff is ahead of now (a node behind the one that revoked) the new refresh
-- token's iat is ceil(cutoff), and the caller signs the access token with max(floor(now),
-- ceil(cutoff)); a cutoff whose ceil is more than the leeway ahead of now gives {'ahead'} (such
-- tokens would be refused as issued in the future). Reuse is decided first, whatever the cutoff.
local idx, skey = K.idx, K.session
local now, sid, jti = tonumber(A.now), A.sid, A.jti
local v = redis.call('HMGET', skey, 'sub', 'created', 'idle_exp', 'abs_exp', 'cur', 'prev',
                     'rotated_at', 'claims', 'cur_iat', 'cur_exp')
if not v[1] then
  redis.call('ZREM', idx, sid)
  return {'missing'}
end
local s = {sub = v[1], created = v[2], idle_exp = v[3], abs_exp = v[4], cur = v[5], prev = v[6],
           rotated_at = v[7], claims = v[8], cur_iat = v[9], cur_exp = v[10]}
-- Revocations that leave the session hash in place reach refresh tokens here: a revoked jti or
-- key, a user/global ``before`` later than the session's creation, and (defence in depth: our
-- own session revocations delete the hash in the same script) a revoked sid.
local created = tonumber(s.created)
local user_before = num(redis.call('HGET', K.user, s.sub)) or 0
local all_before = num(redis.call('HGET', K.all, 'before')) or 0
local kind = nil
if redis.call('ZSCORE', K.sid, sid) then kind = 'session'
elseif redis.call('ZSCORE', K.jti, jti) then kind = 'token'
elseif created < user_before then kind = 'user'
elseif created < all_before then kind = 'all'
elseif redis.call('SISMEMBER', K.kid, A.kid) == 1 then kind = 'key'
elseif now >= expiry(s) then kind = 'expired'
end
if kind ~= nil then
  redis.call('DEL', skey)
  redis.call('ZREM', idx, sid)
  if kind == 'expired' then return {'expired'} end
  return {'revoked', kind}
end
-- tokens issued now carry iat >= the cutoff, and last_seen covers them (logout_all raises its
-- before past last_seen: no token this refresh hands out may survive a later logout_all)
local cutoff = math.max(user_before, all_before)
local issued = math.max(now, math.ceil(cutoff))
local rotate = jti == s.cur
if not rotate and not (jti == s.prev and now - tonumber(s.rotated_at) <= tonumber(A.overlap)) then
  -- an older token, or the previous one after the overlap window: theft is assumed
  end_session(K, idx, sid, {till = A.till, epoch = A.epoch, source = 'sessionsvc',
                            reason = 'refresh_reuse', at = A.now})
  return {'reuse'}
end
if math.ceil(cutoff) > now + tonumber(A.leeway) then return {'ahead', fmt(cutoff)} end
s.idle_exp = fmt(now + tonumber(A.idle_timeout))
local seen = fmt(issued)
if rotate then
  -- rotation: the presented token is consumed, a new current one takes its place
  local iat = math.max(tonumber(A.new_iat), math.ceil(cutoff))
  local exp = math.min(iat + tonumber(A.refresh_ttl), math.floor(tonumber(s.abs_exp)))
  s.prev, s.cur, s.cur_iat, s.cur_exp = s.cur, A.new_jti, fmt(iat), fmt(exp)
  redis.call('HSET', skey, 'prev', s.prev, 'cur', s.cur, 'cur_iat', s.cur_iat,
             'cur_exp', s.cur_exp, 'rotated_at', A.now, 'last_seen', seen,
             'idle_exp', s.idle_exp)
else
  -- the previous token inside the overlap window: the current token is answered again
  redis.call('HSET', skey, 'last_seen', seen, 'idle_exp', s.idle_exp)
end
-- the idle expiry slides; the index keeps the absolute expiry, which does not move
redis.call('PEXPIRE', skey, ttl_ms(expiry(s), now))
return {'ok', s.sub, s.claims, s.cur, s.cur_iat, s.cur_exp, fmt(cutoff)}
