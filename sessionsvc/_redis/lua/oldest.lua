-- OLDEST: for each intake stream, the id of its oldest entry that group A.group has not
-- acknowledged: its first pending entry, else its first entry not yet delivered, else false.
-- KEYS = the intake streams (one hash slot). Only ids leave the script, never entry contents;
-- an undelivered entry is looked up only when the group says some wait (its lag).
local out = {}
for i, key in ipairs(KEYS) do
  local oldest = false
  if redis.call('EXISTS', key) == 1 then
    local summary = redis.call('XPENDING', key, A.group)
    if summary[1] > 0 then
      oldest = summary[2]
    else
      local last, lag = '0-0', nil
      for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
        local info = {}
        for j = 1, #g, 2 do info[g[j]] = g[j + 1] end
        if info['name'] == A.group then last, lag = info['last-delivered-id'], info['lag'] end
      end
      if lag ~= 0 then  -- some wait, or Redis cannot tell (false: a deleted entry in between)
        local nxt = redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', 1)
        if #nxt > 0 then oldest = nxt[1][1] end
      end
    end
  end
  out[i] = oldest
end
return out
