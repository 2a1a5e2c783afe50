-- POSITION: what a reconnecting follower compares with what it holds.
-- KEYS[1] epoch, KEYS[2] log, KEYS[3] trimmed marker, KEYS[4] the workers' inbound report.
-- Returns {epoch|false, last_generated_id, trimmed_id, inbound report|false}: a changed epoch, a
-- trimmed id past ours, or a last id behind ours means re-bootstrap.
local last = '0-0'
if redis.call('EXISTS', KEYS[2]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = info[i + 1] end
  end
end
return {redis.call('GET', KEYS[1]), last, redis.call('GET', KEYS[3]) or '0-0',
        redis.call('GET', KEYS[4])}
