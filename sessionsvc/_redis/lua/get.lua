-- GET: KEYS = idx, session key. ARGV = now. The session hash, or nil when it is gone or has
-- timed out by the caller's clock.
local h = redis.call('HGETALL', KEYS[U + 2])
if #h == 0 or tonumber(ARGV[1]) >= expiry(as_table(h)) then return nil end
return h
