-- Count and trim a user's expired notifications (the sweeper and a reconnecting client call this).
-- KEYS: queue, cursor, version. ARGV: now_ms, pending_ttl_ms, maxlen, key_ttl_ms.
-- Returns {aged, overflow, cursor, version, pending}.
local queue, cursor_key, version_key = KEYS[1], KEYS[2], KEYS[3]
local now, ttl_ms, maxlen, key_ttl_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local cursor = redis.call('GET', cursor_key) or '0-0'
local aged, overflow = expire(queue, cursor, now, ttl_ms, maxlen)
local version, pending = snapshot(queue, cursor, version_key, now, key_ttl_ms)
return {aged, overflow, cursor, version, pending}
