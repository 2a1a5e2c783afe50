-- APPLY_REVOCATION: KEYS = the 8 {rev} keys;
-- ARGV = kind, value, before, until, epoch candidate, id, source, reason, at.
-- Returns the new log entry id, or nil when nothing changed. The event path: a user/all
-- ``before`` ahead of the server's clock is clamped to it (apply.lua).
return apply_revocation(rev_keys(), {kind = ARGV[1], value = ARGV[2], before = ARGV[3],
  till = ARGV[4], epoch = ARGV[5], id = ARGV[6], source = ARGV[7], reason = ARGV[8],
  at = ARGV[9], clamp = true})
