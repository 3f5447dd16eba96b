-- A client was sent everything up to ARGV[2]: move the user's delivered cursor forward (never back).
-- KEYS: queue, cursor, pending. ARGV: user, delivered id, key_ttl_ms. Returns the cursor.
local queue, cursor_key, pending = KEYS[1], KEYS[2], KEYS[3]
local user, delivered, key_ttl_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local cursor = redis.call('GET', cursor_key) or '0-0'
if id_after(delivered, cursor) then
  cursor = delivered
  redis.call('SET', cursor_key, cursor, 'PX', int(key_ttl_ms))
end
update_pending(queue, cursor, pending, user)
return cursor
