-- LIST: K = idx. A = now. Prunes index entries whose session has ended (absolute expiry
-- passed, hash gone, or idle-timed-out by the caller's clock), then returns every live session
-- hash as a flat field/value array, oldest first.
local idx, now = K.idx, tonumber(A.now)
redis.call('ZREMRANGEBYSCORE', idx, '-inf', A.now)
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
  local skey = session_key(idx, sid)
  local h = redis.call('HGETALL', skey)
  if #h == 0 then
    redis.call('ZREM', idx, sid)
  elseif now >= expiry(as_table(h)) then
    redis.call('DEL', skey)
    redis.call('ZREM', idx, sid)
  else
    out[#out + 1] = h
  end
end
return out
