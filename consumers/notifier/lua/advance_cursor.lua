-- A client was sent everything up to ARGV[1]: move the user's delivered cursor forward (never back).
-- KEYS: queue, cursor, version. ARGV: delivered id, key_ttl_ms, now_ms. Returns {cursor, version, pending}.
local queue, cursor_key, version_key = KEYS[1], KEYS[2], KEYS[3]
local delivered, key_ttl_ms, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local cursor = redis.call('GET', cursor_key) or '0-0'
if id_after(delivered, cursor) then
  cursor = delivered
  redis.call('SET', cursor_key, cursor, 'PX', int(key_ttl_ms))
end
local version, pending = snapshot(queue, cursor, version_key, now, key_ttl_ms)
return {cursor, version, pending}
