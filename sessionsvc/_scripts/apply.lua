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
  if x == math.floor(x) then return string.format('%d', x) end
  return string.format('%.6f', x)
end

local function rev_keys()
  return {sid = KEYS[1], jti = KEYS[2], user = KEYS[3], user_until = KEYS[4],
          all = KEYS[5], kid = KEYS[6], log = KEYS[7], epoch = KEYS[8]}
end

-- hash field := value when value is larger (or the field is absent); true when it grew
local function grow(key, field, value)
  local old = num(redis.call('HGET', key, field))
  if old ~= nil and old >= num(value) then return false end
  redis.call('HSET', key, field, value)
  return true
end

-- r = {kind, value, before, till, epoch, id, source, reason, at}. Idempotent and monotonic:
-- until and before only grow, nothing is removed. Appends to the log only when the state
-- changed; returns the log entry id, or false when the revocation was already in force.
local function apply_revocation(K, r)
  if num(r.before) == nil or num(r.till) == nil then
    error('ERR revocation before/until must be numbers')
  end
  local changed
  if r.kind == 'session' then
    changed = redis.call('ZADD', K.sid, 'GT', 'CH', r.till, r.value) == 1
  elseif r.kind == 'token' then
    changed = redis.call('ZADD', K.jti, 'GT', 'CH', r.till, r.value) == 1
  elseif r.kind == 'user' then
    local a = grow(K.user, r.value, r.before)
    local b = redis.call('ZADD', K.user_until, 'GT', 'CH', r.till, r.value) == 1
    changed = a or b
  elseif r.kind == 'all' then
    local a = grow(K.all, 'before', r.before)
    local b = grow(K.all, 'until', r.till)
    changed = a or b
  elseif r.kind == 'key' then
    changed = redis.call('SADD', K.kid, r.value) == 1
  else
    error('ERR unknown revocation kind')
  end
  if not changed then return false end
  -- (unchanged state was written by an earlier apply, which set the epoch already)
  if r.epoch ~= nil and r.epoch ~= '' then redis.call('SET', K.epoch, r.epoch, 'NX') end
  local f = {'kind', r.kind, 'value', r.value, 'before', r.before, 'until', r.till}
  for _, name in ipairs({'id', 'source', 'reason', 'at'}) do
    local v = r[name]
    if v ~= nil and v ~= '' then
      f[#f + 1] = name
      f[#f + 1] = v
    end
  end
  return redis.call('XADD', K.log, '*', unpack(f))
end
