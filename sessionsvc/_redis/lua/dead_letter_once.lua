-- DEAD_LETTER_ONCE: a pub/sub message that cannot be forwarded becomes one dead letter, however
-- many workers heard it. K.dlq the DLQ, K.dedup the message's dedup key (same slot).
-- A.ttl dedup ttl seconds, A.max_len the DLQ's length bound (MAXLEN ~), ARGV from A_MORE on:
-- the letter's field, value pairs. Returns the letter's id, or false when another worker dead-lettered the message already. The XADD (which can fail,
-- e.g. over maxmemory) comes before the dedup write, so a failure writes nothing.
if redis.call('EXISTS', K.dedup) == 1 then return false end
local id = redis.call('XADD', K.dlq, 'MAXLEN', '~', A.max_len, '*', unpack(ARGV, A_MORE))
redis.call('SET', K.dedup, '1', 'EX', A.ttl)
return id
