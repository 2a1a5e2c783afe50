-- FORWARD: a pub/sub event becomes a stream entry, once however many workers heard it.
-- K.stream the intake stream, K.dedup the dedup key (same slot: {<ns>:events}:dedup:<digest>).
-- A.ttl dedup ttl seconds, ARGV from A_MORE on: field, value pairs. Returns the entry id, or
-- false when the message was forwarded already. The XADD (which can fail: a publisher may have exhausted
-- its own stream's ids) comes before the dedup write, so a failure writes nothing.
if redis.call('EXISTS', K.dedup) == 1 then return false end
local id = redis.call('XADD', K.stream, '*', unpack(ARGV, A_MORE))
redis.call('SET', K.dedup, '1', 'EX', A.ttl)
return id
