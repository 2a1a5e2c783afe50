-- APPLY_REVOCATION: K = the 8 {rev} keys, then the publishers' budget keys (if any);
-- A = one revocation (sessionsvc._redis.scripts.REVOCATION: kind, value, before, till, epoch,
-- id, source, reason, at, cap (0: none), budget (the publisher's budget key, given as its index
-- in KEYS; 0: none)).
-- Returns the new log entry id, nil when nothing changed, or 'over_capacity' (nothing written:
-- the publisher's budget holds ``cap`` live charges). The event path: a user/all ``before``
-- ahead of the server's clock is clamped to it (apply.lua).
A.clamp = true
return apply_revocation(K, A)
