-- LIST: KEYS = idx. ARGV = now. Prunes expired index entries (and entries whose hash is gone),
-- then returns every live session hash as a flat field/value array.
local idx, now = KEYS[1], tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', idx, '-inf', ARGV[1])
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
  local h = redis.call('HGETALL', session_key(idx, sid))
  if #h == 0 then
    redis.call('ZREM', idx, sid)
  else
    out[#out + 1] = h
  end
end
touch_index(idx, now)
return out
