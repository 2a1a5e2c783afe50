-- USER_MARK (Redis Cluster: the first step of a logout, before its revocation in {rev}).
-- K = session. A = reason, remove ('1': take this reason's mark off again, the revocation
-- was refused; a mark of another reason stays).
-- Marks the session ``ending``: from now on a refresh refuses it (and revokes and ends it,
-- should this logout go no further) and listing hides it, so a session whose revocation
-- expires before its hash does never comes back. Returns 1 when the session exists.
if redis.call('EXISTS', K.session) == 0 then return 0 end
if A.remove ~= '1' then
  redis.call('HSET', K.session, 'ending', A.reason)
elseif redis.call('HGET', K.session, 'ending') == A.reason then
  redis.call('HDEL', K.session, 'ending')
end
return 1
