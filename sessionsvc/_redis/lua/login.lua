-- LOGIN: K = its {rev} keys, idx, session (the generated prelude: sessionsvc._redis.scripts).
-- A = now, sub, sid, jti, iat, exp (the refresh token's), idle_exp, abs_exp, ip, ua, device,
--     claims, max_sessions (0: no cap), idp_iss, idp_sid (an IdP session, indexed by LOGIN_IDP
--     first; '' for none), till (an eviction's until), epoch (candidate).
-- Returns {'superseded', cutoff} (nothing written) when a logout-everywhere (the user's or the
-- global before, ``cutoff``) is later than the tokens' iat (whole seconds: a login in the same
-- second as a logout-everywhere, after it, has iat = floor(now) < cutoff): the session would be
-- born revoked. The caller signs again with ceil(cutoff) as its now when it is at most the
-- leeway ahead.
-- Otherwise {'ok', evicted sid...}. At the cap the oldest live sessions are evicted (revoked).
local idx, skey = K.idx, K.session
local now = tonumber(A.now)
local before = math.max(num(redis.call('HGET', K.user, A.sub)) or 0,
                        num(redis.call('HGET', K.all, 'before')) or 0)
if tonumber(A.iat) < before then return {'superseded', fmt(before)} end
local out = {'ok'}
local cap = tonumber(A.max_sessions)
if cap > 0 then
  -- the eviction's reads and its apply (which may fail: its log append) come before this
  -- script's first write
  local live, gone = live_sessions(idx, A.now)
  for i = 1, #live - cap + 1 do
    out[#out + 1] = live[i]
    end_session(K, idx, live[i], {till = A.till, epoch = A.epoch, source = 'sessionsvc',
                                  reason = 'evicted', at = A.now})
  end
  for _, sid in ipairs(gone) do redis.call('ZREM', idx, sid) end
end
redis.call('ZREMRANGEBYSCORE', idx, '-inf', A.now)
create_session(idx, skey, now)
return out
