-- Set one user's entry in their shard of the pending index from a snapshot a user script took, unless the shard
-- holds a newer one: snapshots can arrive out of order, and a stale "nothing pending" must not remove the entry
-- that a later push needs. A stale entry is harmless (the sweeper finds nothing and removes it).
-- KEYS: users (sorted set), versions (hash). ARGV: user, version, pending ms digits ('' when nothing is pending).
-- Returns 1 when applied, 0 when a newer snapshot was there.
local users, versions = KEYS[1], KEYS[2]
local user, version, pending = ARGV[1], ARGV[2], ARGV[3]
local held = redis.call('HGET', versions, user)
if held and tonumber(held) > tonumber(version) then return 0 end
if pending == '' then
  redis.call('ZREM', users, user)
  redis.call('HDEL', versions, user)
else
  redis.call('ZADD', users, pending, user)
  redis.call('HSET', versions, user, version)
end
return 1
