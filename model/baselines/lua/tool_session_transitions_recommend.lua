-- The next tools after one finished tool, in one call: what followed it within sessions, shrunk towards popularity
-- where its counts are few.
-- KEYS: 1 popularity zset, then (with a finished tool) 2 its next-tool zset.
-- ARGV: 1 k, 2 prior weight (> 0: pseudo-counts spread by popularity), 3 entries read per list, then the tool ids
--       that must not be returned.
-- score(t) = (next[t] + prior * popularity share of t) / (transitions counted + prior).
-- Returns a flat list tool, score, ... best first (scores as strings).
local k, prior, reads = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if k == nil or k < 0 or prior == nil or prior ~= prior or prior <= 0 or prior == math.huge or reads == nil
    or reads < 1 then
  return redis.error_reply('tool_session_transitions_recommend: bad header "' .. table.concat({ARGV[1], ARGV[2], ARGV[3]}, ' ')
    .. '"')
end
local blocked = {}
for i = 4, #ARGV do blocked[ARGV[i]] = true end
local function read(key)
  if key == nil then return {} end
  return redis.call('ZREVRANGE', key, 0, reads - 1, 'WITHSCORES')
end
local popular, after = read(KEYS[1]), read(KEYS[2])
local pop_total, after_total = 0, 0
for i = 2, #popular, 2 do pop_total = pop_total + math.max(tonumber(popular[i]), 0) end
for i = 2, #after, 2 do after_total = after_total + tonumber(after[i]) end
local scores, order = {}, {}
local function add(tool, amount)
  if blocked[tool] then return end
  if scores[tool] == nil then scores[tool] = 0; order[#order + 1] = tool end
  scores[tool] = scores[tool] + amount
end
for i = 1, #popular, 2 do
  add(popular[i], pop_total > 0 and prior * math.max(tonumber(popular[i + 1]), 0) / pop_total or 0)
end
for i = 1, #after, 2 do add(after[i], tonumber(after[i + 1])) end
table.sort(order, function(a, b)
  if scores[a] ~= scores[b] then return scores[a] > scores[b] end
  return a < b
end)
local result = {}
for i = 1, math.min(k, #order) do
  result[#result + 1] = order[i]
  result[#result + 1] = tostring(scores[order[i]] / (after_total + prior))
end
return result
