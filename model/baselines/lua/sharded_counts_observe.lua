-- Add the increments of a batch of events that fall in one shard of a model's global counts (every key under one
-- hash tag, so one Redis Cluster slot), each event at most once, then trim the shard's lists.
-- KEYS: 1 the shard's applied-event set (zset: event id -> ts ms), 2 .. p + 1 the shard's popularity zsets (not
--       trimmed here: their cut is over every shard, the caller's), then every other zset the events add to, once.
-- ARGV: 1 list cap, 2 applied ids kept, 3 applied-set ttl s, 4 popularity keys p, 5 events e, then per event: event
--       id, ts ms, increments m, and m triples (key index, member, amount).
-- An event id already in the applied set (a redelivery, or a retried batch whose call here had gone through) adds
-- nothing: a batch that failed on another node adds this shard's part once.
-- Returns {events counted, then per popularity key: its size, 1 if an event added to it else 0}.
local function fail(what, value)
  return redis.error_reply('sharded_counts_observe: ' .. what .. ', got "' .. string.sub(tostring(value), 1, 64) .. '"')
end
local function count(value)
  local n = tonumber(value)
  if n == nil or n ~= n or n < 0 or n ~= math.floor(n) or n >= 9007199254740992 then return nil end
  return n
end
local cap, kept, ttl, pops, events = count(ARGV[1]), count(ARGV[2]), count(ARGV[3]), count(ARGV[4]), count(ARGV[5])
if cap == nil or kept == nil or kept < 1 or ttl == nil or ttl < 1 or pops == nil or pops + 1 > #KEYS
    or events == nil then
  return fail('bad header', table.concat({ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]}, ' '))
end
-- Check everything before the first write: all or nothing.
local i = 6
for _ = 1, events do
  local ts, m = count(ARGV[i + 1]), count(ARGV[i + 2])
  if ts == nil or m == nil or ARGV[i] == nil or ARGV[i] == '' then
    return fail('bad event header at argument ' .. i, ARGV[i])
  end
  for j = 0, m - 1 do
    local at = i + 3 + 3 * j
    local index, amount = count(ARGV[at]), tonumber(ARGV[at + 2])
    if index == nil or index < 2 or KEYS[index] == nil or ARGV[at + 1] == nil
        or amount == nil or amount ~= amount or amount == math.huge or amount == -math.huge then
      return fail('bad increment at argument ' .. at, ARGV[at + 2])
    end
  end
  i = i + 3 + 3 * m
end
if i - 1 ~= #ARGV then return fail('argument count does not match', #ARGV) end

local applied, added, counted = KEYS[1], {}, 0
i = 6
for _ = 1, events do
  local m = tonumber(ARGV[i + 2])
  if redis.call('ZADD', applied, 'NX', string.format('%d', tonumber(ARGV[i + 1])), ARGV[i]) == 1 then
    counted = counted + 1
    for j = 0, m - 1 do
      local at = i + 3 + 3 * j
      local index = tonumber(ARGV[at])
      redis.call('ZINCRBY', KEYS[index], ARGV[at + 2], ARGV[at + 1])
      added[index] = true
    end
  end
  i = i + 3 + 3 * m
end
if counted > 0 then
  redis.call('ZREMRANGEBYRANK', applied, 0, -(kept + 1))
  redis.call('EXPIRE', applied, ttl)
end
for index, _ in pairs(added) do
  if index > pops + 1 and redis.call('ZCARD', KEYS[index]) > cap * 1.2 then
    redis.call('ZREMRANGEBYRANK', KEYS[index], 0, -(cap + 1))
  end
end
local result = {counted}
for index = 2, pops + 1 do
  result[#result + 1] = redis.call('ZCARD', KEYS[index])
  result[#result + 1] = added[index] and 1 or 0
end
return result
