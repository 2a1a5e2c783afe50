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
local now, sid = tonumber(A.now), A.sid
local s = refresh_view(idx, skey, sid)
if s == nil then return {'missing'} end
-- Revocations that leave the session hash in place reach refresh tokens here: a revoked jti or
-- key, a user/global ``before`` later than the session's creation, and (defence in depth: our
-- own session revocations delete the hash in the same script) a revoked sid.
local created = tonumber(s.created)
local user_before = num(redis.call('HGET', K.user, s.sub)) or 0
local all_before = num(redis.call('HGET', K.all, 'before')) or 0
local kind = nil
if redis.call('ZSCORE', K.sid, sid) then kind = 'session'
elseif redis.call('ZSCORE', K.jti, A.jti) then kind = 'token'
elseif created < user_before then kind = 'user'
elseif created < all_before then kind = 'all'
elseif redis.call('SISMEMBER', K.kid, A.kid) == 1 then kind = 'key'
elseif now >= expiry(s) then kind = 'expired'
end
if kind ~= nil then return refused(idx, skey, sid, kind) end
if reused(s, now) then
  end_session(K, idx, sid, {till = A.till, epoch = A.epoch, source = 'sessionsvc',
                            reason = 'refresh_reuse', at = A.now})
  return {'reuse'}
end
return rotate(skey, s, now, math.max(user_before, all_before))
