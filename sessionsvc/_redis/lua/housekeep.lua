-- HOUSEKEEP: forget revocations no token can match any more, trim the log by age.
-- K = the 8 {rev} keys, the trimmed marker, the lock.
-- A = now (seconds), min_id (log entries older than this go), lock_ms (the lock's ttl).
-- Only one worker per lock period does the work. Returns {pruned, trimmed} or false (locked).
if not redis.call('SET', K.lock, '1', 'NX', 'PX', A.lock_ms) then return false end
local now = A.now
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
local newest_gone = redis.call('XREVRANGE', K.log, '(' .. A.min_id, '-', 'COUNT', 1)
if #newest_gone == 1 then
  -- record the largest trimmed id first: a follower behind it must re-bootstrap
  redis.call('SET', K.trimmed, newest_gone[1][1])
  trimmed = redis.call('XTRIM', K.log, 'MINID', A.min_id)
end
return {pruned, trimmed}
