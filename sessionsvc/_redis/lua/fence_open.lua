-- FENCE_OPEN (Redis Cluster: step 1 of a logout-everywhere, in the user's slot).
-- K = idx, fence. A = before (the caller's clock), clamp ('1': at most this server's clock,
-- the event path), ttl_ms (how long the fence lives: the longest session), op (this
-- operation's random id), origin (opaque: what _finish needs to apply it for the caller).
-- The fence hash {u:<tag>}:fence holds ``before`` (the latest finished cutoff) and, per
-- operation under way, ``p:<op>`` (its cutoff) and ``o:<op>`` (its origin). While any is
-- pending no session of the user is created or rotated: the caller finishes it first
-- (session.lua's fence_state; every step is idempotent). The cutoff is raised just past (1 us)
-- the last activity of every session, as on one Redis (logout_all.lua). Returns {cutoff,
-- sessions}: every session there is now was created before the cutoff, so fence_close (this
-- operation's, or that of another that finishes it) ends exactly these.
local before = tonumber(A.before)
if A.clamp == '1' then
  local time = redis.call('TIME')
  before = math.min(before, tonumber(time[1]) + tonumber(time[2]) / 1000000)
end
local n = 0
for _, sid in ipairs(redis.call('ZRANGE', K.idx, 0, -1)) do
  local seen = num(redis.call('HGET', session_key(K.idx, sid), 'last_seen'))
  if seen ~= nil then
    n = n + 1
    if seen + 0.000001 > before then before = seen + 0.000001 end
  end
end
local b = fmt(before)
redis.call('HSET', K.fence, 'p:' .. A.op, b, 'o:' .. A.op, A.origin)
fence_ttl(K.fence, tonumber(A.ttl_ms))
return {b, n}
