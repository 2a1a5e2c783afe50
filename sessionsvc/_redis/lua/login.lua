-- LOGIN: K = its {rev} keys, idx, session (the generated prelude: sessionsvc._redis.scripts).
-- A = now, sub, sid, jti, iat, exp (the refresh token's), idle_exp, abs_exp, ip, ua, device,
--     claims, max_sessions (0: no cap), till (an eviction's until), epoch (candidate).
-- Returns {'superseded', cutoff} (nothing written) when a logout-everywhere (the user's or the
-- global before, ``cutoff``) is later than now: the session would be born revoked. The caller
-- signs again with the cutoff as its now (iat >= cutoff) when it is at most the leeway ahead.
-- Otherwise {'ok', evicted sid...}. At the cap the oldest live sessions are evicted (revoked).
local idx, skey = K.idx, K.session
local now, sub, sid = tonumber(A.now), A.sub, A.sid
local before = math.max(num(redis.call('HGET', K.user, sub)) or 0,
                        num(redis.call('HGET', K.all, 'before')) or 0)
if now < before then return {'superseded', fmt(before)} end
local out = {'ok'}
local cap = tonumber(A.max_sessions)
if cap > 0 then
  -- the live members (absolute expiry after now), oldest first; the eviction's reads and its
  -- apply (which may fail: its log append) come before this script's first write
  local live, gone = redis.call('ZRANGE', idx, '(' .. A.now, '+inf', 'BYSCORE'), {}
  for i = 1, #live - cap + 1 do
    if redis.call('EXISTS', session_key(idx, live[i])) == 1 then
      out[#out + 1] = live[i]
    else
      gone[#gone + 1] = live[i]  -- ended by its idle timeout already: no revocation
    end
  end
  for i = 2, #out do
    end_session(K, idx, out[i], {till = A.till, epoch = A.epoch, source = 'sessionsvc',
                                 reason = 'evicted', at = A.now})
  end
  for _, sid in ipairs(gone) do redis.call('ZREM', idx, sid) end
end
redis.call('ZREMRANGEBYSCORE', idx, '-inf', A.now)
local h = {'sub', sub, 'sid', sid, 'created', A.now, 'last_seen', A.now,
           'idle_exp', A.idle_exp, 'abs_exp', A.abs_exp, 'claims', A.claims,
           'cur', A.jti, 'cur_iat', A.iat, 'cur_exp', A.exp}
for _, name in ipairs({'ip', 'ua', 'device'}) do
  if A[name] ~= '' then
    h[#h + 1] = name
    h[#h + 1] = A[name]
  end
end
redis.call('HSET', skey, unpack(h))
local abs_exp = tonumber(A.abs_exp)
redis.call('PEXPIRE', skey, ttl_ms(math.min(tonumber(A.idle_exp), abs_exp), now))
redis.call('ZADD', idx, abs_exp, sid)
extend_index(idx, abs_exp, now)
return out
