-- DEAD_LETTER_ONCE: a pub/sub message that cannot be forwarded becomes one dead letter, however
-- many workers heard it. KEYS[1] the DLQ, KEYS[2] the message's dedup key (same slot).
-- ARGV[1] dedup ttl seconds, ARGV[2] the DLQ's length bound (MAXLEN ~), ARGV[3..] the letter's
-- field, value pairs. Returns the letter's id,
-- or false when another worker dead-lettered the message already. The XADD (which can fail,
-- e.g. over maxmemory) comes before the dedup write, so a failure writes nothing.
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
return id
