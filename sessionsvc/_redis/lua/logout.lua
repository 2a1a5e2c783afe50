-- LOGOUT: KEYS = its {rev} keys (K, U: see rev_prelude), idx, session key, and on the event
-- path a publisher's budget. ARGV = now, sid, until, epoch, reason, source, event id (the last
-- two recorded in the log), cap (the event path: the budget's cap; absent or 0: none).
-- The session revocation is applied whether or not the hash still exists (a logout must log
-- out even after Redis lost the hash); a publisher's is charged to its budget, and refused
-- when that is full (the session then stays). Returns {existed (0/1), log id or ''} or
-- {0, 'over_capacity'}.
local idx = KEYS[U + 1]
local existed, id = end_session(K, idx, ARGV[2], {till = ARGV[3], epoch = ARGV[4],
  source = ARGV[6], id = ARGV[7], reason = ARGV[5], at = ARGV[1], cap = ARGV[8],
  budget = KEYS[U + 3]})
return {existed, id or ''}
