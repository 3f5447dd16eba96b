-- Apply a batch of co-occurrence and popularity increments in one call, then trim touched lists.
-- KEYS: every key touched (popularity and co-occurrence zsets), each once.
-- ARGV: 1 max co-occurrence list length, 2 number of increments n, then n triples (key index, member, amount).
local cap, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local touched = {}
for i = 0, n - 1 do
  local key = KEYS[tonumber(ARGV[3 + 3 * i])]
  redis.call('ZINCRBY', key, ARGV[5 + 3 * i], ARGV[4 + 3 * i])
  touched[key] = true
end
for key, _ in pairs(touched) do
  if redis.call('ZCARD', key) > cap * 1.2 then redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1)) end
end
return n
