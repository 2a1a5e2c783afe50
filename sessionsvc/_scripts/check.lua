-- CHECK: the revocation check of one token against Redis itself (the `direct` staleness policy).
-- KEYS = the 8 {rev} keys (after apply.lua's rev_keys()); ARGV = sid, jti, sub, iat, kid, now.
-- Returns the kind that revokes the token, or false.
local K = rev_keys()
local now = tonumber(ARGV[6])
local function live(score) return score and (score == 'inf' or tonumber(score) > now) end
if live(redis.call('ZSCORE', K.sid, ARGV[1])) then return 'session' end
if live(redis.call('ZSCORE', K.jti, ARGV[2])) then return 'token' end
local iat = tonumber(ARGV[4])
local before = redis.call('HGET', K.user, ARGV[3])
if before and iat < tonumber(before) then return 'user' end
before = redis.call('HGET', K.all, 'before')
if before and iat < tonumber(before) then return 'all' end
if redis.call('SISMEMBER', K.kid, ARGV[5]) == 1 then return 'key' end
return false
