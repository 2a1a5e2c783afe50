-- The one apply path (shared prefix of every script that revokes).
--
-- K is a table of {rev} keys: rev_keys() maps all eight, KEYS[1..8], in this order (see
-- sessionsvc.revoker.RevKeys); a session script declares only those it touches (rev_prelude):
--   sid (zset sid -> until), jti (zset jti -> until), user (hash sub -> before),
--   user_until (zset sub -> until), all (hash before/until), kid (set), log (stream), epoch.
-- Numbers travel as strings: integers plainly, fractions with 6 decimals, infinity as "inf".

local function num(s)
  if s == nil or s == false then return nil end
  if s == 'inf' or s == '+inf' then return math.huge end
  return tonumber(s)
end

local function fmt(x)
  if x == math.huge then return 'inf' end
  if x == math.floor(x) then return string.format('%.0f', x) end
  return string.format('%.6f', x)
end

local function rev_keys()
  return {sid = KEYS[1], jti = KEYS[2], user = KEYS[3], user_until = KEYS[4],
          all = KEYS[5], kid = KEYS[6], log = KEYS[7], epoch = KEYS[8]}
end

-- queue ZADD when ``member`` is new or its score grows (the semantics of ZADD GT CH);
-- true when the member is present already
local function zset_grows(writes, key, member, score, text)
  local old = num(redis.call('ZSCORE', key, member))
  if old == nil or score > old then writes[#writes + 1] = {'ZADD', key, text, member} end
  return old ~= nil
end

-- queue HSET when the hash field is absent or ``value`` is larger (a grow-only field);
-- true when the field is present already
local function field_grows(writes, key, field, value, text)
  local old = num(redis.call('HGET', key, field))
  if old == nil or value > old then writes[#writes + 1] = {'HSET', key, field, text} end
  return old ~= nil
end

-- a new value would take the kind's state (``count_key``) past ``cap`` (0: no cap)
local function over_capacity(present, cap, count_key)
  return not present and cap > 0 and redis.call('ZCARD', count_key) >= cap
end

-- r = {kind, value, before, till, epoch, id, source, reason, at, clamp, cap}. Idempotent and
-- monotonic: until and before only grow, nothing is removed. Appends to the log only when the
-- state changed; returns the log entry id, false when the revocation was already in force, or
-- 'over_capacity' (nothing written) when r.cap is set (the event path, by value: Settings.
-- max_revocations; 0 or absent: no cap) and a session, token or user revocation would add a
-- value its kind's state does not hold yet to a state already holding r.cap values. A status,
-- not an error: one refusal must not abort the rest of a batch. Keys and the global entry are
-- not capped, and the session scripts pass no cap (a logout must always log out).
--
-- r.clamp (the event path: APPLY_REVOCATION, APPLY_BATCH): a user/all ``before`` later than
-- the server's clock (TIME) is applied as the server's time, and ``until`` moves down with it
-- (same distance from ``before``). The worker accepts a ``before`` up to the leeway ahead of its
-- clock (skew, not the future); unclamped it would refuse every login facing it for that long.
-- logout_all does not clamp: its ``before`` is raised past the deleted sessions' last activity,
-- app clocks that may be ahead of Redis', to cover tokens those nodes issued.
--
-- Ordering invariant (Redis does not roll back a script that fails half-way): every command
-- that can fail runs before the first write. "Changed" is decided by reads alone (ZSCORE, HGET,
-- SISMEMBER: the semantics of ZADD GT CH and of a grow-only hash field), then the log entry is
-- appended (XADD fails e.g. on a log whose last id is the largest possible), and only then is
-- the state written (commands that cannot fail on keys whose type the reads checked). So a
-- failed apply leaves the state as it was, and a state change is never missing from the log.
-- Scripts that also delete a session call this first and delete afterwards (session.lua).
local function apply_revocation(K, r)
  local before, till = num(r.before), num(r.till)
  if before == nil or till == nil or before ~= before or till ~= till or before < 0
      or till < 0 then
    error('ERR revocation before/until must be numbers')
  end
  if r.clamp and before > 0 and (r.kind == 'user' or r.kind == 'all') then
    local time = redis.call('TIME')
    local server = tonumber(time[1]) + tonumber(time[2]) / 1000000
    if before > server then
      if till ~= math.huge then till = math.max(0, till - (before - server)) end
      before = server
    end
  end
  -- state and log get the canonical text (ZADD refuses some strings tonumber accepts)
  local b, t = fmt(before), fmt(till)
  local cap = tonumber(r.cap) or 0
  local w = {}  -- the writes, decided by reads alone
  if r.kind == 'session' or r.kind == 'token' then
    local key = r.kind == 'session' and K.sid or K.jti
    if over_capacity(zset_grows(w, key, r.value, till, t), cap, key) then
      return 'over_capacity'
    end
  elseif r.kind == 'user' then
    local a = field_grows(w, K.user, r.value, before, b)
    local c = zset_grows(w, K.user_until, r.value, till, t)
    if over_capacity(a or c, cap, K.user_until) then return 'over_capacity' end
  elseif r.kind == 'all' then
    field_grows(w, K.all, 'before', before, b)
    field_grows(w, K.all, 'until', till, t)
  elseif r.kind == 'key' then
    if redis.call('SISMEMBER', K.kid, r.value) == 0 then
      w[#w + 1] = {'SADD', K.kid, r.value}
    end
  else
    error('ERR unknown revocation kind')
  end
  if #w == 0 then return false end
  local f = {'kind', r.kind, 'value', r.value, 'before', b, 'until', t}
  for _, name in ipairs({'id', 'source', 'reason', 'at'}) do
    local v = r[name]
    if v ~= nil and v ~= '' then
      f[#f + 1] = name
      f[#f + 1] = v
    end
  end
  local id = redis.call('XADD', K.log, '*', unpack(f))  -- the first write
  -- (unchanged state was written by an earlier apply, which set the epoch already)
  if r.epoch ~= nil and r.epoch ~= '' then redis.call('SET', K.epoch, r.epoch, 'NX') end
  for _, cmd in ipairs(w) do redis.call(unpack(cmd)) end
  return id
end
