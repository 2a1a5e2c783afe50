-- APPLY_REVOCATION: KEYS = the 8 {rev} keys, then the publishers' budget keys (if any);
-- ARGV = kind, value, before, until, epoch candidate, id, source, reason, at, cap (0: none),
-- budget (the index in KEYS of the publisher's budget; 0: none).
-- Returns the new log entry id, nil when nothing changed, or 'over_capacity' (nothing written:
-- the publisher's budget holds ``cap`` live charges). The event path: a user/all ``before``
-- ahead of the server's clock is clamped to it (apply.lua).
return apply_revocation(rev_keys(), {kind = ARGV[1], value = ARGV[2], before = ARGV[3],
  till = ARGV[4], epoch = ARGV[5], id = ARGV[6], source = ARGV[7], reason = ARGV[8],
  at = ARGV[9], cap = ARGV[10], budget = KEYS[tonumber(ARGV[11])], clamp = true})
