-- LOGIN_IDP: the step before a login that records an identity provider's session (its issuer
-- and sid): our new session id A.sid joins that IdP session's index K.idp, a set of our
-- session ids (sessionsvc.sessions.keys: SessionKeys.idp), whose TTL is extended, never
-- shortened, to A.ttl_ms (the absolute session timeout plus the longest access-token
-- lifetime). It runs before the login script: a failure in between leaves a member that names
-- no session (a logout of it ends nothing), never a session its IdP cannot log out.
-- Ordering: SADD is the first write and the one command that can fail (a key of another type:
-- nothing written). PEXPIRE GT leaves a key without a TTL as it is (none counts as infinite):
-- NX then gives it its first. Returns 1 if A.sid was added, 0 if it was there already.
local added = redis.call('SADD', K.idp, A.sid)
if redis.call('PEXPIRE', K.idp, A.ttl_ms, 'GT') == 0 then
  redis.call('PEXPIRE', K.idp, A.ttl_ms, 'NX')
end
return added
