-- LOGIN_RESERVE: reserve one login attempt on the counter K.counter (a user name's or a client
-- address's) before the attempt's credentials are checked, in a fixed window of A.window_ms
-- milliseconds that starts with the window's first reservation. INCR is the first write, and it
-- fails (writing nothing) on a key that holds no integer; a counter found without an expiry
-- (only the first INCR makes one, or a counter not written by these scripts) gets the window,
-- so no counter outlives it. Returns {count, milliseconds left in the window}: the caller
-- compares the count, this attempt's included, with its limit.
local count = redis.call('INCR', K.counter)
local left = redis.call('PTTL', K.counter)
if left < 0 then
  redis.call('PEXPIRE', K.counter, A.window_ms)
  left = tonumber(A.window_ms)
end
return {count, left}
