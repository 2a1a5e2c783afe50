-- USER_LOGIN (Redis Cluster: the {u} step of a login, after REV_READ). K = idx, session, fence.
-- A = login's ARGV without till and epoch (now, sub, sid, jti, iat, exp, idle_exp, abs_exp, ip,
-- ua, device, claims, max_sessions, idp_iss, idp_sid), then cutoff (the later of the user's and
-- the global ``before`` REV_READ answered); more_arg: sessions the caller has evicted
-- (revoked): ended here.
-- Returns {'pending', op, cutoff, origin} (a logout-everywhere is under way: the caller
-- finishes it), {'superseded', cutoff} (as LOGIN, by the tokens' iat; the fence's ``before``
-- counts as the user's), {'evict', sid...} (at the cap: these are marked ``ending`` — refused
-- and hidden from now on — and the caller revokes them, then calls again naming them) or
-- {'ok'}.
local idx, skey = K.idx, K.session
local now = tonumber(A.now)
local pending, fence_before = fence_state(K.fence)
if pending then return {'pending', unpack(pending)} end
local before = math.max(num(A.cutoff) or 0, fence_before or 0)
if tonumber(A.iat) < before then return {'superseded', fmt(before)} end
for i = 1, N_MORE do  -- their revocations are applied: end them
  redis.call('DEL', session_key(idx, more_arg(i)))
  redis.call('ZREM', idx, more_arg(i))
end
local cap = tonumber(A.max_sessions)
if cap > 0 then
  local live, gone = live_sessions(idx, A.now)
  if #live >= cap then
    local out = {'evict'}
    for i = 1, #live - cap + 1 do
      out[#out + 1] = live[i]
      redis.call('HSET', session_key(idx, live[i]), 'ending', 'evicted')
    end
    return out
  end
  for _, sid in ipairs(gone) do redis.call('ZREM', idx, sid) end
end
redis.call('ZREMRANGEBYSCORE', idx, '-inf', A.now)
create_session(idx, skey, now)
return {'ok'}
