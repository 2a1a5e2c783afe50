-- FORGET: remove a dead consumer from group A.group of intake K.stream, but only if it holds no
-- pending entry at that moment (checked and done atomically: XGROUP DELCONSUMER discards the
-- pending entries of the consumer it deletes, and those would never be applied). A.consumer the
-- consumer. Returns the number DELCONSUMER reports (0), or false when it still holds entries.
if #redis.call('XPENDING', K.stream, A.group, '-', '+', 1, A.consumer) > 0 then return false end
return redis.call('XGROUP', 'DELCONSUMER', K.stream, A.group, A.consumer)
