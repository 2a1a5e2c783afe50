-- Session helpers (shared prefix of the session scripts, after apply.lua).
-- A user's keys share one hash tag: the index ss:{u:<tag>}:idx (zset sid -> absolute expiry)
-- and the session hashes ss:{u:<tag>}:s:<sid> (TTL: the idle or absolute expiry, whichever is
-- first). Session keys are derived from the declared index key (same slot), because
-- logout_all, eviction and list learn the sids only from the index: the index key ends in
-- LAYOUT_INDEX, a session key has LAYOUT_SESSION .. sid in its place (both declared by the
-- generated prelude from sessionsvc._redis.layout, the one definition of the key layout).
--
-- The index never leaks: a member's score is its session's absolute expiry, fixed at login, and
-- the index's TTL is extended (never shortened) to cover each new member, so it never outlives
-- its longest possible session. Members leave with their session (an empty zset is deleted by
-- Redis); members whose session ended otherwise (idle timeout) are pruned on login and listing.

local function session_key(idx, sid)
  return string.sub(idx, 1, -#LAYOUT_INDEX - 1) .. LAYOUT_SESSION .. sid
end

local function as_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function expiry(s)
  return math.min(tonumber(s.idle_exp), tonumber(s.abs_exp))
end

local function ttl_ms(exp, now)
  local ms = math.ceil((exp - now) * 1000)
  if ms < 1 then return 1 end
  return ms
end

-- the index lives at least until ``exp`` (PEXPIRE GT treats a key without TTL as infinite:
-- a new index gets its first TTL from the plain PEXPIRE)
local function extend_index(idx, exp, now)
  local ms = ttl_ms(exp, now)
  if redis.call('PEXPIRE', idx, ms, 'GT') == 0 and redis.call('PTTL', idx) == -1 then
    redis.call('PEXPIRE', idx, ms)
  end
end

-- revoke the session through the apply path, then delete it; returns (existed, log id).
-- In that order: an apply that fails (its log append) leaves the session as it was, so a
-- session never ends without its revocation reaching the log.
local function end_session(K, idx, sid, r)
  r.kind = 'session'
  r.value = sid
  r.before = '0'
  local id = apply_revocation(K, r)
  if id == 'over_capacity' then return 0, id end  -- a publisher over its budget: nothing done
  local existed = redis.call('DEL', session_key(idx, sid))
  redis.call('ZREM', idx, sid)
  return existed, id
end
