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

-- ``key`` lives at least ``ms`` more, never less than it had (PEXPIRE GT treats a key without
-- TTL as infinite: a new key gets its first TTL from the plain PEXPIRE)
local function extend_ttl(key, ms)
  if redis.call('PEXPIRE', key, ms, 'GT') == 0 and redis.call('PTTL', key) == -1 then
    redis.call('PEXPIRE', key, ms)
  end
end
local fence_ttl = extend_ttl  -- a user's fence (Redis Cluster: fence_open.lua)

-- the index lives at least until ``exp``
local function extend_index(idx, exp, now)
  extend_ttl(idx, ttl_ms(exp, now))
end

-- the live sessions of the index, oldest first (absolute expiry after ``now`` and a hash),
-- and the members whose hash is gone (ended by their idle timeout); reads only
local function live_sessions(idx, now)
  local live, gone = {}, {}
  for _, sid in ipairs(redis.call('ZRANGE', idx, '(' .. now, '+inf', 'BYSCORE')) do
    if redis.call('EXISTS', session_key(idx, sid)) == 1 then
      live[#live + 1] = sid
    else
      gone[#gone + 1] = sid
    end
  end
  return live, gone
end

-- write the new session A.sid (login's ARGV: the optional fields only when given, among them
-- the IdP session a login records, idp_iss and idp_sid) and index it
local function create_session(idx, skey, now)
  local h = {'sub', A.sub, 'sid', A.sid, 'created', A.now, 'last_seen', A.now,
             'idle_exp', A.idle_exp, 'abs_exp', A.abs_exp, 'claims', A.claims,
             'cur', A.jti, 'cur_iat', A.iat, 'cur_exp', A.exp}
  for _, name in ipairs({'ip', 'ua', 'device', 'idp_iss', 'idp_sid'}) do
    if A[name] ~= '' then
      h[#h + 1] = name
      h[#h + 1] = A[name]
    end
  end
  redis.call('HSET', skey, unpack(h))
  local abs_exp = tonumber(A.abs_exp)
  redis.call('PEXPIRE', skey, ttl_ms(math.min(tonumber(A.idle_exp), abs_exp), now))
  redis.call('ZADD', idx, abs_exp, A.sid)
  extend_index(idx, abs_exp, now)
end

-- the session hash fields a refresh reads (HMGET order), as a table
local REFRESH_FIELDS = {'sub', 'created', 'idle_exp', 'abs_exp', 'cur', 'prev', 'rotated_at',
                        'claims', 'cur_iat', 'cur_exp', 'ending'}
local function refresh_view(idx, skey, sid)  -- nil when it has ended (then unindexed)
  local v = redis.call('HMGET', skey, unpack(REFRESH_FIELDS))
  if not v[1] then
    redis.call('ZREM', idx, sid)
    return nil
  end
  local s = {}
  for i, name in ipairs(REFRESH_FIELDS) do s[name] = v[i] end
  return s
end

-- a refresh refused (revoked, or timed out): the session ends here; a revocation that refuses
-- it is in {rev} already, so nothing is lost
local function refused(idx, skey, sid, kind)
  redis.call('DEL', skey)
  redis.call('ZREM', idx, sid)
  if kind == 'expired' then return {'expired'} end
  return {'revoked', kind}
end

-- is the presented refresh token (A.jti) neither the current one nor the previous one within
-- the overlap window? Then theft is assumed
local function reused(s, now)
  if A.jti == s.cur then return false end
  return not (A.jti == s.prev and now - tonumber(s.rotated_at) <= tonumber(A.overlap))
end

-- the refresh's answer for a live, unrevoked session that is not reused: rotate (the presented
-- token is the current one) or answer the current one again (the previous one, within the
-- overlap); {'ahead', cutoff} (nothing written) when tokens as of ``cutoff`` would be refused
-- as issued in the future. Tokens issued now carry iat >= the cutoff, and last_seen covers them
-- (a logout-everywhere raises its before past last_seen: no token handed out here may survive it)
local function rotate(skey, s, now, cutoff)
  if math.ceil(cutoff) > now + tonumber(A.leeway) then return {'ahead', fmt(cutoff)} end
  s.idle_exp = fmt(now + tonumber(A.idle_timeout))
  local seen = fmt(math.max(now, math.ceil(cutoff)))
  if A.jti == s.cur then
    -- rotation: the presented token is consumed, a new current one takes its place
    local iat = math.max(tonumber(A.new_iat), math.ceil(cutoff))
    local exp = math.min(iat + tonumber(A.refresh_ttl), math.floor(tonumber(s.abs_exp)))
    s.prev, s.cur, s.cur_iat, s.cur_exp = s.cur, A.new_jti, fmt(iat), fmt(exp)
    redis.call('HSET', skey, 'prev', s.prev, 'cur', s.cur, 'cur_iat', s.cur_iat,
               'cur_exp', s.cur_exp, 'rotated_at', A.now, 'last_seen', seen,
               'idle_exp', s.idle_exp)
  else
    -- the previous token inside the overlap window: the current token is answered again
    redis.call('HSET', skey, 'last_seen', seen, 'idle_exp', s.idle_exp)
  end
  -- the idle expiry slides; the index keeps the absolute expiry, which does not move
  redis.call('PEXPIRE', skey, ttl_ms(expiry(s), now))
  return {'ok', s.sub, s.claims, s.cur, s.cur_iat, s.cur_exp, fmt(cutoff)}
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

-- Redis Cluster: a user's fence (fence_open.lua) holds ``before`` and, per logout-everywhere
-- under way, ``p:<op>`` (its cutoff) and ``o:<op>`` (its origin, opaque JSON). The first
-- pending one as {op, cutoff, origin}, or nil; and the fence's ``before``. A cutoff that is not
-- a number (written by hand) is dropped: nothing could finish it.
local function fence_state(fence)
  local h = redis.call('HGETALL', fence)
  local before, pending = nil, nil
  for i = 1, #h, 2 do
    local name = h[i]
    if name == 'before' then
      before = num(h[i + 1])
    elseif pending == nil and string.sub(name, 1, 2) == 'p:' then
      local op = string.sub(name, 3)
      if num(h[i + 1]) == nil then
        redis.call('HDEL', fence, name, 'o:' .. op)
      else
        pending = {op, h[i + 1], redis.call('HGET', fence, 'o:' .. op) or ''}
      end
    end
  end
  return pending, before
end
