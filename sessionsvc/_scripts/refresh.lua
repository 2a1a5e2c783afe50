-- REFRESH: KEYS = 8 {rev} keys, idx, session key.
-- ARGV = now, sid, presented jti, presented kid, new jti, new iat, refresh_ttl, idle_timeout,
--        overlap, revocation until, epoch candidate.
-- Returns {'missing'} | {'revoked', kind} | {'expired'} | {'reuse'} |
--         {'ok', sub, claims, jti, iat, exp, abs_exp} (the refresh token to hand out).
local K = rev_keys()
local idx, skey = KEYS[9], KEYS[10]
local now, sid, jti = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local s = as_table(redis.call('HGETALL', skey))
if s.sub == nil then
  redis.call('ZREM', idx, sid)
  return {'missing'}
end
-- revocations reach refresh tokens as well: a revoked sid, jti or key, or a user/global
-- before later than the session's creation, ends the session here
local created = tonumber(s.created)
local kind = nil
if redis.call('ZSCORE', K.sid, sid) then kind = 'session'
elseif redis.call('ZSCORE', K.jti, jti) then kind = 'token'
elseif created < (num(redis.call('HGET', K.user, s.sub)) or 0) then kind = 'user'
elseif created < (num(redis.call('HGET', K.all, 'before')) or 0) then kind = 'all'
elseif redis.call('SISMEMBER', K.kid, ARGV[4]) == 1 then kind = 'key'
end
if kind == nil and now >= expiry(s) then kind = 'expired' end
if kind ~= nil then
  redis.call('DEL', skey)
  redis.call('ZREM', idx, sid)
  touch_index(idx, now)
  if kind == 'expired' then return {'expired'} end
  return {'revoked', kind}
end
if jti == s.cur then
  -- rotation: the presented token is consumed, a new current one takes its place
  local exp = math.min(tonumber(ARGV[6]) + tonumber(ARGV[7]), math.floor(tonumber(s.abs_exp)))
  s.prev, s.cur, s.cur_iat, s.cur_exp, s.rotated_at = s.cur, ARGV[5], ARGV[6], fmt(exp), ARGV[1]
  redis.call('HSET', skey, 'prev', s.prev, 'cur', s.cur, 'cur_iat', s.cur_iat,
             'cur_exp', s.cur_exp, 'rotated_at', s.rotated_at)
elseif not (jti == s.prev and now - tonumber(s.rotated_at) <= tonumber(ARGV[9])) then
  -- an older token, or the previous one after the overlap window: theft is assumed
  end_session(K, idx, sid, {till = ARGV[10], epoch = ARGV[11], source = 'sessionsvc',
                            reason = 'refresh_reuse', at = ARGV[1]})
  touch_index(idx, now)
  return {'reuse'}
end
-- (the previous token inside the overlap window falls through: the current token is answered)
local idle_exp = now + tonumber(ARGV[8])
redis.call('HSET', skey, 'last_seen', ARGV[1], 'idle_exp', fmt(idle_exp))
s.idle_exp = fmt(idle_exp)
local exp = expiry(s)
expire_session(skey, exp, now)
redis.call('ZADD', idx, exp, sid)
touch_index(idx, now)
return {'ok', s.sub, s.claims, s.cur, s.cur_iat, s.cur_exp}
