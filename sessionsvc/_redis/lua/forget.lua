-- FORGET: remove a dead consumer from group ARGV[1] of intake KEYS[1], but only if it holds no
-- pending entry at that moment (checked and done atomically: XGROUP DELCONSUMER discards the
-- pending entries of the consumer it deletes, and those would never be applied). ARGV[2] the
-- consumer. Returns the number DELCONSUMER reports (0), or false when it still holds entries.
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return false end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
