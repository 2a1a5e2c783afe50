-- LOGOUT: KEYS = its {rev} keys (K, U: see rev_prelude), idx, session key. ARGV = now, sid, until, epoch, reason,
-- source, event id (the last two recorded in the log).
-- The session revocation is applied whether or not the hash still exists (a logout must log
-- out even after Redis lost the hash). Returns {existed (0/1), log id or ''}.
local idx = KEYS[U + 1]
local existed, id = end_session(K, idx, ARGV[2], {till = ARGV[3], epoch = ARGV[4],
  source = ARGV[6], id = ARGV[7], reason = ARGV[5], at = ARGV[1]})
return {existed, id or ''}
