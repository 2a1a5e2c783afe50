-- HOUSEKEEP: forget revocations no token can match any more, trim the log by age.
-- KEYS = the 8 {rev} keys (after apply.lua's rev_keys()) + KEYS[9] trimmed marker + KEYS[10] lock.
-- ARGV = now (seconds), log min id (entries older than this go), lock ttl (ms).
-- Only one worker per lock period does the work. Returns {pruned, trimmed} or false (locked).
local K = rev_keys()
if not redis.call('SET', KEYS[10], '1', 'NX', 'PX', ARGV[3]) then return false end
local now = ARGV[1]
local pruned = redis.call('ZREMRANGEBYSCORE', K.sid, '-inf', now)
pruned = pruned + redis.call('ZREMRANGEBYSCORE', K.jti, '-inf', now)
local gone = redis.call('ZRANGEBYSCORE', K.user_until, '-inf', now)
for _, sub in ipairs(gone) do redis.call('HDEL', K.user, sub) end
pruned = pruned + redis.call('ZREMRANGEBYSCORE', K.user_until, '-inf', now)
local glob_until = num(redis.call('HGET', K.all, 'until'))
if glob_until ~= nil and glob_until <= tonumber(now) then
  redis.call('DEL', K.all)
  pruned = pruned + 1
end
local trimmed = 0
local newest_gone = redis.call('XREVRANGE', K.log, '(' .. ARGV[2], '-', 'COUNT', 1)
if #newest_gone == 1 then
  -- record the largest trimmed id first: a follower behind it must re-bootstrap
  redis.call('SET', KEYS[9], newest_gone[1][1])
  trimmed = redis.call('XTRIM', K.log, 'MINID', ARGV[2])
end
return {pruned, trimmed}
