-- LOGIN_RELEASE: give back one attempt reserved on the counter K.counter (a client address's:
-- the login succeeded), never below 0; the window is left as it is. A key that holds no
-- integer is an error, before anything is written; a counter found without an expiry gets the
-- window A.window_ms, so no counter outlives it. Returns the count left (0: no counter).
local value = redis.call('GET', K.counter)
if not value then return 0 end
if value ~= '0' and not string.match(value, '^%-?[1-9]%d*$') then
  return redis.error_reply('ERR not a login counter')
end
local count = tonumber(value)
if count > 0 then
  count = redis.call('DECR', K.counter)
end
if redis.call('PTTL', K.counter) < 0 then
  redis.call('PEXPIRE', K.counter, A.window_ms)
end
return count
