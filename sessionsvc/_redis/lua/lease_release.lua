-- LEASE_RELEASE: K.lease a lease key, A.owner. Deletes the lease only while ``owner`` holds it;
-- 1 if it did, else 0.
if redis.call('GET', K.lease) == A.owner then return redis.call('DEL', K.lease) end
return 0
