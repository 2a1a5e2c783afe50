-- Session helpers (shared prefix of the session scripts, after apply.lua).
-- A user's keys share one hash tag: the index ss:{u:<tag>}:idx (zset sid -> expiry) and the
-- session hashes ss:{u:<tag>}:s:<sid>. Session keys are derived from the declared index key
-- (same slot), because logout_all, eviction and list learn the sids only from the index.

local function session_key(idx, sid)
  return string.sub(idx, 1, -4) .. 's:' .. sid
end

local function as_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

local function expiry(s)
  return math.min(tonumber(s.idle_exp), tonumber(s.abs_exp))
end

-- the index lives exactly as long as its longest-lived session: it never leaks
local function touch_index(idx, now)
  local last = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  if #last == 0 then return end
  local ms = math.ceil((tonumber(last[2]) - now) * 1000)
  if ms < 1 then
    redis.call('DEL', idx)
  else
    redis.call('PEXPIRE', idx, ms)
  end
end

local function expire_session(skey, exp, now)
  local ms = math.ceil((exp - now) * 1000)
  if ms < 1 then ms = 1 end
  redis.call('PEXPIRE', skey, ms)
end

-- delete the session and revoke it through the apply path; returns (existed, log id)
local function end_session(K, idx, sid, r)
  local existed = redis.call('DEL', session_key(idx, sid))
  redis.call('ZREM', idx, sid)
  r.kind = 'session'
  r.value = sid
  r.before = '0'
  return existed, apply_revocation(K, r)
end
