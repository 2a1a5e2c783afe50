-- FORWARD: a pub/sub event becomes a stream entry, once however many workers heard it.
-- KEYS[1] the intake stream, KEYS[2] the dedup key (same slot: {<ns>:events}:dedup:<digest>).
-- ARGV[1] dedup ttl seconds, ARGV[2..] field, value pairs. Returns the entry id, or false when
-- the message was forwarded already. The XADD (which can fail: a publisher may have exhausted
-- its own stream's ids) comes before the dedup write, so a failure writes nothing.
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
return id
