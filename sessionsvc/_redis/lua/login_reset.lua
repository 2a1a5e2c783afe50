-- LOGIN_RESET: forget the attempts counted on K.counter (a user name's: its login succeeded).
-- Returns 1 if there were any, else 0.
return redis.call('DEL', K.counter)
