-- APPLY_OWN (Redis Cluster: the {rev} step of a session operation): one revocation through
-- the apply path, as APPLY_REVOCATION takes it, without the event path's clamp: a
-- logout-everywhere's ``before`` was raised past the user's last activity in the user's slot
-- (fence_open.lua) and must stay so. Returns the log id, nil (already in force) or
-- 'over_capacity'.
return apply_revocation(K, A)
