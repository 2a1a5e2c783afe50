-- SNAPSHOT: the whole revocation state and the log position, read in one atomic step.
-- KEYS = the 8 {rev} keys (after apply.lua's rev_keys()) + KEYS[9] trimmed marker;
-- ARGV[1] = epoch candidate (set when Redis holds none yet).
-- Returns {epoch, last_generated_id, trimmed_id, sid, jti, user, user_until, all, kid}:
-- sid/jti/user_until as flat member,score lists, user/all as flat field,value lists, kid members.
local K = rev_keys()
redis.call('SET', K.epoch, ARGV[1], 'NX')
local function last_generated(log)
  if redis.call('EXISTS', log) == 0 then return '0-0' end
  local info = redis.call('XINFO', 'STREAM', log)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then return info[i + 1] end
  end
  return '0-0'
end
return {redis.call('GET', K.epoch), last_generated(K.log), redis.call('GET', KEYS[9]) or '0-0',
  redis.call('ZRANGE', K.sid, 0, -1, 'WITHSCORES'),
  redis.call('ZRANGE', K.jti, 0, -1, 'WITHSCORES'),
  redis.call('HGETALL', K.user),
  redis.call('ZRANGE', K.user_until, 0, -1, 'WITHSCORES'),
  redis.call('HGETALL', K.all),
  redis.call('SMEMBERS', K.kid)}
