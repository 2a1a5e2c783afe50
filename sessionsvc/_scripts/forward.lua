-- FORWARD: a pub/sub event becomes a stream entry, once however many workers heard it.
-- KEYS[1] inbound stream, KEYS[2] dedup key (same slot: {<stream>}:dedup:<digest>).
-- ARGV[1] dedup ttl seconds, ARGV[2..] field, value pairs. Returns the entry id or false.
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return false end
return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
