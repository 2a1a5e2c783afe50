-- LOGOUT: K = its {rev} keys, idx, session, and on the event path a publisher's budget (the
-- generated prelude). A = now, sid, till, epoch, reason, source, id (the event's; the last two
-- recorded in the log), cap (the event path: the budget's cap; 0: none).
-- The session revocation is applied whether or not the hash still exists (a logout must log
-- out even after Redis lost the hash); a publisher's is charged to its budget, and refused
-- when that is full (the session then stays). Returns {existed (0/1), log id or ''} or
-- {0, 'over_capacity'}.
local existed, id = end_session(K, K.idx, A.sid, {till = A.till, epoch = A.epoch,
  source = A.source, id = A.id, reason = A.reason, at = A.now, cap = A.cap, budget = K.budget})
return {existed, id or ''}
