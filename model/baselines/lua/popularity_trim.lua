-- Remove the members of one popularity shard that fell below the cut the caller drew over every shard, each only
-- while its score is still the one the caller read (a member counted again since keeps its place).
-- KEYS: 1 the shard's popularity zset.
-- ARGV: member, score, member, score ... (scores as read).
-- Returns the number removed.
local removed = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
