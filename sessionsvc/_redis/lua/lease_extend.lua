-- LEASE_EXTEND: K.lease a lease key (SET NX PX by its taker), A.owner, A.ttl_ms. Extends the
-- lease only while ``owner`` holds it; 1 if it did, else 0.
if redis.call('GET', K.lease) == A.owner then
  return redis.call('PEXPIRE', K.lease, A.ttl_ms)
end
return 0
