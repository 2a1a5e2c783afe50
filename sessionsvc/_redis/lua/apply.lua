-- The one apply path (shared prefix of every script that revokes).
--
-- K is a table of {rev} keys (the generated prelude: sessionsvc._redis.scripts): the worker's
-- scripts declare all eight (sessionsvc._redis.layout.REV_APPLY), a session script only those
-- it touches:
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

-- ``text`` when it is already a canonical number (what the Python side and fmt write: digits,
-- or digits, a point and digits, or inf), else fmt(x): a pattern match costs a fifth of a
-- string.format, and an apply formats two numbers.
local function canon(text, x)
  if text == 'inf' or string.find(text, '^%d+$') or string.find(text, '^%d+%.%d+$') then
    return text
  end
  return fmt(x)
end

-- Read once per script run (a batch applies hundreds of revocations): the server's clock
-- (frozen within a script anyway), whether this run has set the epoch, the live size of each
-- publisher budget (counted on as this run charges it) and whether it was pruned.
local server_clock, epoch_set, budget_sizes, budget_pruned = nil, false, {}, {}
local EXTENSION = 60  -- seconds an extended session or token revocation gets beyond its ask

local function server_now()
  if server_clock == nil then
    local time = redis.call('TIME')
    server_clock = tonumber(time[1]) + tonumber(time[2]) / 1000000
  end
  return server_clock
end

-- Publisher budgets. Every revocation a publisher's event adds or extends is charged to that
-- publisher's budget, a zset (kind:value -> until, r.budget) in the {rev} slot, until it
-- expires; a publisher whose budget holds r.cap live charges may add no more (the worker
-- dead-letters the event: over_capacity). Reads only: the live size is a ZCOUNT from now, and
-- expired charges are pruned after the log append, with the other writes.
local function budget_refuses(r)
  local key, cap = r.budget, tonumber(r.cap) or 0
  if key == nil or key == '' or cap <= 0 then return false end
  local member = r.kind .. ':' .. r.value
  if redis.call('ZSCORE', key, member) then return false end  -- charged already
  local size = budget_sizes[key] or redis.call('ZCOUNT', key, '(' .. fmt(server_now()), '+inf')
  if size >= cap then return true end
  budget_sizes[key] = size + 1
  return false
end

local function charge(r, t, till)
  local key = r.budget
  if key == nil or key == '' or (tonumber(r.cap) or 0) <= 0 then return end
  local member = r.kind .. ':' .. r.value
  if not budget_pruned[key] then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(server_now()))
    budget_pruned[key] = true
  end
  redis.call('ZADD', key, 'GT', t, member)
  if till ~= math.huge then  -- the budget lives as long as its longest charge
    local at = math.ceil(till * 1000)
    if redis.call('PEXPIREAT', key, at, 'GT') == 0 and redis.call('PTTL', key) == -1 then
      redis.call('PEXPIREAT', key, at)
    end
  end
end

-- r = {kind, value, before, till, epoch, id, source, reason, at, clamp, cap, budget}.
-- Idempotent and monotonic: until and before only grow, nothing is removed. Appends to the log
-- only when the state changed; returns the log entry id, false when the revocation was already
-- in force, or 'over_capacity' (nothing written) when r.budget names a publisher's budget that
-- holds r.cap live charges already (above). A status, not an error: one refusal must not abort
-- the rest of a batch. Operators' events and the session service's own revocations carry no
-- budget (a logout must always log out); key revocations are not charged (they are bounded by
-- the configured key rings, and never expire).
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
local function append_log(K, r, b, t)
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
  if not epoch_set and r.epoch ~= nil and r.epoch ~= '' then
    redis.call('SET', K.epoch, r.epoch, 'NX')
    epoch_set = true
  end
  return id
end

local function apply_revocation(K, r)
  local before, till = num(r.before), num(r.till)
  if before == nil or till == nil or before ~= before or till ~= till or before < 0
      or till < 0 then
    error('ERR revocation before/until must be numbers')
  end
  local b, t  -- state and log get canonical text (ZADD refuses some strings tonumber accepts)
  if r.clamp and before > 0 and (r.kind == 'user' or r.kind == 'all') then
    local server = server_now()
    if before > server then
      if till ~= math.huge then till = math.max(0, till - (before - server)) end
      before = server
      b, t = fmt(before), fmt(till)
    end
  end
  if b == nil then b, t = canon(r.before, before), canon(r.till, till) end
  local kind, value = r.kind, r.value
  if kind == 'session' or kind == 'token' then  -- a zset value -> until, grow-only
    local key = kind == 'session' and K.sid or K.jti
    local old = num(redis.call('ZSCORE', key, value))
    if old ~= nil and till <= old then return false end
    if old ~= nil then  -- an extension: by a minute more than asked, so that the same
      till = till + EXTENSION  -- revocation sent again and again appends to the log at most
      t = fmt(till)            -- once a minute (validators round expiry up a minute anyway)
    end
    if budget_refuses(r) then return 'over_capacity' end
    local id = append_log(K, r, b, t)
    redis.call('ZADD', key, t, value)
    charge(r, t, till)
    return id
  elseif kind == 'user' then  -- a hash sub -> before and a zset sub -> until, both grow-only
    local old_before = num(redis.call('HGET', K.user, value))
    local old_until = num(redis.call('ZSCORE', K.user_until, value))
    local grow_before = old_before == nil or before > old_before
    local grow_until = old_until == nil or till > old_until
    if not grow_before and not grow_until then return false end
    if budget_refuses(r) then return 'over_capacity' end
    local id = append_log(K, r, b, t)
    if grow_before then redis.call('HSET', K.user, value, b) end
    if grow_until then redis.call('ZADD', K.user_until, t, value) end
    charge(r, t, till)
    return id
  elseif kind == 'all' then  -- one hash: before and until, both grow-only
    local old_before = num(redis.call('HGET', K.all, 'before'))
    local old_until = num(redis.call('HGET', K.all, 'until'))
    local grow_before = old_before == nil or before > old_before
    local grow_until = old_until == nil or till > old_until
    if not grow_before and not grow_until then return false end
    if budget_refuses(r) then return 'over_capacity' end
    local id = append_log(K, r, b, t)
    if grow_before then redis.call('HSET', K.all, 'before', b) end
    if grow_until then redis.call('HSET', K.all, 'until', t) end
    charge(r, t, till)
    return id
  elseif kind == 'key' then
    if redis.call('SISMEMBER', K.kid, value) == 1 then return false end
    local id = append_log(K, r, b, t)
    redis.call('SADD', K.kid, value)
    return id
  end
  error('ERR unknown revocation kind')
end
