-- LOGOUT_ALL: K = its {rev} keys, idx, and on the event path a publisher's budget (the
-- generated prelude). A = now, sub, before, till_offset, epoch, reason, source, id (the
-- event's; the last two recorded in the log), cap (the event path: the budget's cap; 0: none),
-- clamp ('1' on the event path: ``before`` is at most Redis' clock).
-- Applies a user revocation, then deletes every session of the user. ``before`` is raised just
-- past (1 us) the last activity of every deleted session, so a refresh that ran just before this
-- script with a clock ahead of ours cannot have issued an access token that survives; an
-- event's own ``before`` (the worker's clock) is first clamped to Redis' clock, like every
-- event's. Returns {sessions ended, before, log id or ''}, or {0, before, 'over_capacity'}.
local idx = K.idx
local before = tonumber(A.before)
if A.clamp == '1' then before = math.min(before, server_now()) end
local sids = redis.call('ZRANGE', idx, 0, -1)
local skeys = {}
for i, sid in ipairs(sids) do  -- reads only: the cutoff
  skeys[i] = session_key(idx, sid)
  local seen = num(redis.call('HGET', skeys[i], 'last_seen'))
  if seen ~= nil and seen + 0.000001 > before then before = seen + 0.000001 end
end
local b = fmt(before)
local id = apply_revocation(K, {kind = 'user', value = A.sub, before = b,
  till = fmt(num(b) + tonumber(A.till_offset)), epoch = A.epoch, source = A.source,
  id = A.id, reason = A.reason, at = A.now, cap = A.cap, budget = K.budget})
if id == 'over_capacity' then return {0, b, id} end
-- the sessions end only once their revocation is applied and logged
for _, skey in ipairs(skeys) do redis.call('DEL', skey) end
redis.call('DEL', idx)
return {#sids, b, id or ''}
