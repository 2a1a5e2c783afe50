-- LOGIN: KEYS = its {rev} keys (K, U: see rev_prelude), idx, session key.
-- ARGV = now, sub, sid, jti, iat, refresh exp, idle_exp, abs_exp, ip, ua, device, claims,
--        max sessions (0: no cap), eviction until, epoch candidate.
-- Returns {'superseded', cutoff} (nothing written) when a logout-everywhere (the user's or the
-- global before, ``cutoff``) is later than now: the session would be born revoked. The caller
-- signs again with the cutoff as its now (iat >= cutoff) when it is at most the leeway ahead.
-- Otherwise {'ok', evicted sid...}. At the cap the oldest live sessions are evicted (revoked).
local idx, skey = KEYS[U + 1], KEYS[U + 2]
local now, sub, sid = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local before = math.max(num(redis.call('HGET', K.user, sub)) or 0,
                        num(redis.call('HGET', K.all, 'before')) or 0)
if now < before then return {'superseded', fmt(before)} end
local out = {'ok'}
local cap = tonumber(ARGV[13])
if cap > 0 then
  -- the live members (absolute expiry after now), oldest first; the eviction's reads and its
  -- apply (which may fail: its log append) come before this script's first write
  local live, gone = redis.call('ZRANGE', idx, '(' .. ARGV[1], '+inf', 'BYSCORE'), {}
  for i = 1, #live - cap + 1 do
    if redis.call('EXISTS', session_key(idx, live[i])) == 1 then
      out[#out + 1] = live[i]
    else
      gone[#gone + 1] = live[i]  -- ended by its idle timeout already: no revocation
    end
  end
  for i = 2, #out do
    end_session(K, idx, out[i], {till = ARGV[14], epoch = ARGV[15], source = 'sessionsvc',
                                 reason = 'evicted', at = ARGV[1]})
  end
  for _, sid in ipairs(gone) do redis.call('ZREM', idx, sid) end
end
redis.call('ZREMRANGEBYSCORE', idx, '-inf', ARGV[1])
local h = {'sub', sub, 'sid', sid, 'created', ARGV[1], 'last_seen', ARGV[1],
           'idle_exp', ARGV[7], 'abs_exp', ARGV[8], 'claims', ARGV[12],
           'cur', ARGV[4], 'cur_iat', ARGV[5], 'cur_exp', ARGV[6]}
for i, name in ipairs({'ip', 'ua', 'device'}) do
  if ARGV[8 + i] ~= '' then
    h[#h + 1] = name
    h[#h + 1] = ARGV[8 + i]
  end
end
redis.call('HSET', skey, unpack(h))
local abs_exp = tonumber(ARGV[8])
redis.call('PEXPIRE', skey, ttl_ms(math.min(tonumber(ARGV[7]), abs_exp), now))
redis.call('ZADD', idx, abs_exp, sid)
extend_index(idx, abs_exp, now)
return out
