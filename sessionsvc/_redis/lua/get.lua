-- GET: K = the session key. A = now. The session hash, or nil when it is gone or has
-- timed out by the caller's clock.
local h = redis.call('HGETALL', K.session)
if #h == 0 or tonumber(A.now) >= expiry(as_table(h)) then return nil end
return h
