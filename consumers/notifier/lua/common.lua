-- Shared by the push-queue scripts (prepended to each). Stream ids are "ms-seq"; Lua numbers hold ms exactly.
local function parse_id(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

local function id_after(a, b)
  local am, as = parse_id(a)
  local bm, bs = parse_id(b)
  if am ~= bm then return am > bm end
  return as > bs
end

-- Keep the user's entry in the pending index at the time of their oldest undelivered notification.
local function update_pending(queue, cursor, pending, user)
  local nxt = redis.call('XRANGE', queue, '(' .. cursor, '+', 'COUNT', 1)
  if #nxt == 0 then
    redis.call('ZREM', pending, user)
  else
    redis.call('ZADD', pending, parse_id(nxt[1][1]), user)
  end
end

-- Trim entries past their time to live, then beyond the per-user bound; count those never delivered.
local function expire(queue, cursor, now, ttl_ms, maxlen)
  local aged, overflow = 0, 0
  local cutoff = now - ttl_ms
  if cutoff > 0 then
    local old = redis.call('XRANGE', queue, '-', '(' .. cutoff .. '-0')
    for _, entry in ipairs(old) do
      if id_after(entry[1], cursor) then aged = aged + 1 end
    end
    if #old > 0 then redis.call('XTRIM', queue, 'MINID', cutoff) end
  end
  local excess = redis.call('XLEN', queue) - maxlen
  if excess > 0 then
    local oldest = redis.call('XRANGE', queue, '-', '+', 'COUNT', excess)
    for _, entry in ipairs(oldest) do
      if id_after(entry[1], cursor) then overflow = overflow + 1 end
    end
    redis.call('XTRIM', queue, 'MAXLEN', maxlen)
  end
  return aged, overflow
end
