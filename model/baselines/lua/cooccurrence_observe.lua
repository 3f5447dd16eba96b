-- Apply a batch of events' co-occurrence and popularity increments in one call, each event at most once,
-- then trim touched lists.
-- KEYS: every key touched (each user's observed-event set, popularity and co-occurrence zsets), each once.
-- ARGV: 1 max co-occurrence list length, 2 observed ids kept per user, 3 observed-set ttl s, 4 number of
--       events e, then per event: observed-set key index, event id, ts ms, increments m, and m triples
--       (key index, member, amount).
-- An event id already in its user's observed set (a redelivery, a retried batch) adds nothing.
-- Returns the number of events counted.
local function fail(what, value)
  return redis.error_reply('cooccurrence_observe: ' .. what .. ', got "' .. string.sub(tostring(value), 1, 64) .. '"')
end
local function count(value)
  local n = tonumber(value)
  if n == nil or n ~= n or n < 0 or n ~= math.floor(n) or n >= 9007199254740992 then return nil end
  return n
end
local cap, kept, ttl, events = count(ARGV[1]), count(ARGV[2]), count(ARGV[3]), count(ARGV[4])
if cap == nil or kept == nil or kept < 1 or ttl == nil or ttl < 1 or events == nil then
  return fail('bad header', table.concat({ARGV[1], ARGV[2], ARGV[3], ARGV[4]}, ' '))
end
-- Check everything before the first write: all or nothing.
local i = 5
for _ = 1, events do
  local set, ts, m = KEYS[count(ARGV[i])], count(ARGV[i + 2]), count(ARGV[i + 3])
  if set == nil or ts == nil or m == nil or ARGV[i + 1] == nil or ARGV[i + 1] == '' then
    return fail('bad event header at argument ' .. i, ARGV[i + 1])
  end
  for j = 0, m - 1 do
    local at = i + 4 + 3 * j
    local amount = tonumber(ARGV[at + 2])
    if KEYS[count(ARGV[at])] == nil or ARGV[at + 1] == nil
        or amount == nil or amount ~= amount or amount == math.huge or amount == -math.huge then
      return fail('bad increment at argument ' .. at, ARGV[at + 2])
    end
  end
  i = i + 4 + 3 * m
end
if i - 1 ~= #ARGV then return fail('argument count does not match', #ARGV) end

local touched, counted = {}, 0
i = 5
for _ = 1, events do
  local set, event_id, ts, m = KEYS[tonumber(ARGV[i])], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  if redis.call('ZADD', set, 'NX', string.format('%d', ts), event_id) == 1 then
    counted = counted + 1
    redis.call('ZREMRANGEBYRANK', set, 0, -(kept + 1))
    redis.call('EXPIRE', set, ttl)
    for j = 0, m - 1 do
      local at = i + 4 + 3 * j
      local key = KEYS[tonumber(ARGV[at])]
      redis.call('ZINCRBY', key, ARGV[at + 2], ARGV[at + 1])
      touched[key] = true
    end
  end
  i = i + 4 + 3 * m
end
for key, _ in pairs(touched) do
  if redis.call('ZCARD', key) > cap * 1.2 then redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1)) end
end
return counted
