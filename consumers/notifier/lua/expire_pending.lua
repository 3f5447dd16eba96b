-- Count and trim a user's expired notifications (the sweeper and a reconnecting client call this).
-- KEYS: queue, cursor, pending. ARGV: user, now_ms, pending_ttl_ms, maxlen. Returns {aged, overflow, cursor}.
local queue, cursor_key, pending = KEYS[1], KEYS[2], KEYS[3]
local user, now, ttl_ms, maxlen = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cursor = redis.call('GET', cursor_key) or '0-0'
local aged, overflow = expire(queue, cursor, now, ttl_ms, maxlen)
update_pending(queue, cursor, pending, user)
return {aged, overflow, cursor}
