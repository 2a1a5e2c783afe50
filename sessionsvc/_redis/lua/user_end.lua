-- USER_END (Redis Cluster: the {u} step that ends a session whose revocation the caller has
-- applied already). K = idx, session. A = sid. Returns 1 when the session hash existed.
local existed = redis.call('DEL', K.session)
redis.call('ZREM', K.idx, A.sid)
return existed
