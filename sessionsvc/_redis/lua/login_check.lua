-- LOGIN_CHECK: the failed logins counted on K.counter and the milliseconds left in its window:
-- {count, left}; {0, 0} when there is no counter. A key that holds no integer is an error,
-- before anything is written. A counter found without an expiry (not one login_fail wrote) gets
-- the window A.window_ms, so no counter can lock a name or an address for good.
local value = redis.call('GET', K.counter)
if not value then return {0, 0} end
local count = tonumber(value)
if not count or count ~= math.floor(count) then
  return redis.error_reply('ERR not a login counter')
end
local left = redis.call('PTTL', K.counter)
if left < 0 then
  redis.call('PEXPIRE', K.counter, A.window_ms)
  left = tonumber(A.window_ms)
end
return {count, left}
