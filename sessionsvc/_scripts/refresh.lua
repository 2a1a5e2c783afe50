-- REFRESH: KEYS = its {rev} keys (K, U: see rev_prelude), idx, session key.
-- ARGV = now, sid, presented jti, presented kid, new jti, new iat, refresh_ttl, idle_timeout,
--        overlap, revocation until, epoch candidate.
-- Returns {'missing'} | {'revoked', kind} | {'expired'} | {'reuse'} |
--         {'ok', sub, claims, jti, iat, exp} (the refresh token to hand out).
local idx, skey = KEYS[U + 1], KEYS[U + 2]
local now, sid, jti = tonumber(ARGV[1]), ARGV[2], ARGV[3]
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
local kind = nil
if redis.call('ZSCORE', K.sid, sid) then kind = 'session'
elseif redis.call('ZSCORE', K.jti, jti) then kind = 'token'
elseif created < (num(redis.call('HGET', K.user, s.sub)) or 0) then kind = 'user'
elseif created < (num(redis.call('HGET', K.all, 'before')) or 0) then kind = 'all'
elseif redis.call('SISMEMBER', K.kid, ARGV[4]) == 1 then kind = 'key'
elseif now >= expiry(s) then kind = 'expired'
end
if kind ~= nil then
  redis.call('DEL', skey)
  redis.call('ZREM', idx, sid)
  if kind == 'expired' then return {'expired'} end
  return {'revoked', kind}
end
local idle_exp = now + tonumber(ARGV[8])
s.idle_exp = fmt(idle_exp)
if jti == s.cur then
  -- rotation: the presented token is consumed, a new current one takes its place
  local exp = math.min(tonumber(ARGV[6]) + tonumber(ARGV[7]), math.floor(tonumber(s.abs_exp)))
  s.prev, s.cur, s.cur_iat, s.cur_exp = s.cur, ARGV[5], ARGV[6], fmt(exp)
  redis.call('HSET', skey, 'prev', s.prev, 'cur', s.cur, 'cur_iat', s.cur_iat,
             'cur_exp', s.cur_exp, 'rotated_at', ARGV[1], 'last_seen', ARGV[1],
             'idle_exp', s.idle_exp)
elseif jti == s.prev and now - tonumber(s.rotated_at) <= tonumber(ARGV[9]) then
  -- the previous token inside the overlap window: the current token is answered again
  redis.call('HSET', skey, 'last_seen', ARGV[1], 'idle_exp', s.idle_exp)
else
  -- an older token, or the previous one after the overlap window: theft is assumed
  end_session(K, idx, sid, {till = ARGV[10], epoch = ARGV[11], source = 'sessionsvc',
                            reason = 'refresh_reuse', at = ARGV[1]})
  return {'reuse'}
end
-- the idle expiry slides; the index keeps the absolute expiry, which does not move
redis.call('PEXPIRE', skey, ttl_ms(expiry(s), now))
return {'ok', s.sub, s.claims, s.cur, s.cur_iat, s.cur_exp}
