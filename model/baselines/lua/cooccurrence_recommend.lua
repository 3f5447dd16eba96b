-- Recency-weighted co-occurrence with the seed items, popularity filling the rest, in one call.
-- KEYS: 1 popularity zset, 2.. co-occurrence zsets of the seeds, most recent seed first.
-- ARGV: 1 k, 2 neighbours read per seed, then the item ids that must not be returned.
-- Returns a flat list item, score, item, score ... best first (scores as strings).
local k, neighbours = tonumber(ARGV[1]), tonumber(ARGV[2])
local blocked = {}
for i = 3, #ARGV do blocked[ARGV[i]] = true end
local scores, order = {}, {}
for s = 2, #KEYS do
  local pairs_ = redis.call('ZREVRANGE', KEYS[s], 0, neighbours - 1, 'WITHSCORES')
  if #pairs_ > 0 then
    local top = tonumber(pairs_[2])
    if top == nil or top <= 0 then top = 1 end
    for i = 1, #pairs_, 2 do
      local item = pairs_[i]
      if not blocked[item] then
        if scores[item] == nil then scores[item] = 0; order[#order + 1] = item end
        scores[item] = scores[item] + (tonumber(pairs_[i + 1]) / top) / (s - 1)
      end
    end
  end
end
table.sort(order, function(a, b)
  if scores[a] ~= scores[b] then return scores[a] > scores[b] end
  return a < b
end)
local result, chosen = {}, {}
for i = 1, math.min(k, #order) do
  result[#result + 1] = order[i]
  result[#result + 1] = tostring(scores[order[i]])
  chosen[order[i]] = true
end
-- Popularity fills up below every co-occurrence score (scores in [0, 0.01]).
local start, page, top_pop = 0, k * 4 + 16, nil
while #result < 2 * k do
  local popular = redis.call('ZREVRANGE', KEYS[1], start, start + page - 1, 'WITHSCORES')
  if #popular == 0 then break end
  if top_pop == nil then
    top_pop = tonumber(popular[2])
    if top_pop == nil or top_pop <= 0 then top_pop = 1 end
  end
  for i = 1, #popular, 2 do
    local item = popular[i]
    if not blocked[item] and not chosen[item] then
      result[#result + 1] = item
      result[#result + 1] = tostring(0.01 * tonumber(popular[i + 1]) / top_pop)
      chosen[item] = true
      if #result >= 2 * k then break end
    end
  end
  start = start + page
end
return result
