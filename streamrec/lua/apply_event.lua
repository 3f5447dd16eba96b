-- Apply one event to a user's session context, atomically and idempotently, in one round trip.
-- KEYS: 1 session hash, 2 session recent items (list), 3 session categories (hash),
--       4 user hash, 5 user recent items (list), 6 user consumed (zset "kind:id" -> ts ms),
--       7 user seen event ids (zset event_id -> ts ms, the idempotency window),
--       8 session event marks (hash): event_id -> page-view ordinal, so a redelivered page view keeps it,
--         and "p:" .. event_id -> "session pushes:user pushes", so a redelivery sees the lists as of itself
-- ARGV: 1 event_id, 2 event type, 3 ts ms, 4 item id or "", 5 category or "", 6 consumed member or "",
--       7 user id, 8 session id, 9 session ttl s, 10 history ttl s, 11 recent cap, 12 dedupe window,
--       13 price or "", 14 how many items of each list to return
-- Returns {duplicate, session fields (flat), session recent items, session categories (flat),
--          user recent items, user consumed members (newest first, capped), page-view ordinal or 0};
-- for a duplicate the three lists are as of the event itself (the session counters are today's).
-- Every argument is checked before the first write: an event is applied whole or not at all.
local function fail(what, value)
  return redis.error_reply('apply_event: ' .. what .. ', got "' .. string.sub(tostring(value), 1, 64) .. '"')
end
local function finite(n)
  return n ~= nil and n == n and n ~= math.huge and n ~= -math.huge
end
-- A non-negative integer below 2^53 (exact in a double), or nil.
local function count(value)
  local n = tonumber(value)
  if not finite(n) or n < 0 or n ~= math.floor(n) or n >= 9007199254740992 then return nil end
  return n
end
-- Numbers go back to Redis as integer strings: Lua 5.1 prints 253402300799000 as 2.53402300799e+14.
local function int(n) return string.format('%d', n) end

local sess, items, cats, user, urecent, consumed, seen, marks =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local event_id, kind, item, category, member = ARGV[1], ARGV[2], ARGV[4], ARGV[5], ARGV[6]
if #KEYS ~= 8 or #ARGV ~= 14 then return fail('expected 8 keys and 14 arguments', #KEYS .. '/' .. #ARGV) end
if event_id == '' then return fail('event_id must not be empty', event_id) end
local ts = count(ARGV[3])
if ts == nil then return fail('ts must be integer ms since epoch', ARGV[3]) end
local session_ttl, history_ttl = count(ARGV[9]), count(ARGV[10])
local cap, window, returned = count(ARGV[11]), count(ARGV[12]), count(ARGV[14])
if session_ttl == nil or session_ttl < 1 then return fail('session ttl must be a positive integer', ARGV[9]) end
if history_ttl == nil or history_ttl < 1 then return fail('history ttl must be a positive integer', ARGV[10]) end
if cap == nil or cap < 1 then return fail('recent cap must be a positive integer', ARGV[11]) end
if window == nil or window < 1 then return fail('dedupe window must be a positive integer', ARGV[12]) end
if returned == nil or returned < 1 then return fail('returned items must be a positive integer', ARGV[14]) end
local price = nil
if ARGV[13] ~= '' then
  price = tonumber(ARGV[13])
  if not finite(price) or price < 0 then return fail('price must be a finite number >= 0', ARGV[13]) end
end

local ts_s = int(ts)
local duplicate = 0
if redis.call('ZADD', seen, 'NX', ts_s, event_id) == 0 then
  duplicate = 1
else
  redis.call('ZREMRANGEBYRANK', seen, 0, -(window + 1))
  -- The session's and the user's plain fields are read with one HMGET and written with one HSET each.
  local times = redis.call('HMGET', sess, 'started_ms', 'last_ms')
  local started, last = tonumber(times[1]), tonumber(times[2] or '0')
  local fields = {'user_id', ARGV[7]}
  if started == nil or ts < started then table.insert(fields, 'started_ms'); table.insert(fields, ts_s) end
  if ts > last then table.insert(fields, 'last_ms'); table.insert(fields, ts_s) end
  if kind == 'session_end' then table.insert(fields, 'ended_ms'); table.insert(fields, ts_s) end
  redis.call('HSET', sess, unpack(fields))
  redis.call('HINCRBY', sess, 'events', 1)
  if kind == 'page_view' then
    local n = redis.call('HINCRBY', sess, 'page_views', 1)
    redis.call('HSET', marks, event_id, n)
  end
  if price ~= nil then
    redis.call('HINCRBYFLOAT', sess, 'price_sum', ARGV[13])
    redis.call('HINCRBY', sess, 'priced_views', 1)
  end
  local pushed, upushed
  if item ~= '' then
    redis.call('LPUSH', items, item)
    redis.call('LTRIM', items, 0, cap - 1)
    pushed = redis.call('HINCRBY', sess, 'items_pushed', 1)
    redis.call('LPUSH', urecent, item)
    redis.call('LTRIM', urecent, 0, cap - 1)
    upushed = redis.call('HINCRBY', user, 'items_pushed', 1)
  else
    pushed = tonumber(redis.call('HGET', sess, 'items_pushed') or '0')
    upushed = tonumber(redis.call('HGET', user, 'items_pushed') or '0')
  end
  redis.call('HSET', marks, 'p:' .. event_id, int(pushed) .. ':' .. int(upushed))
  if category ~= '' then redis.call('HINCRBY', cats, category, 1) end
  if member ~= '' then
    redis.call('ZADD', consumed, ts_s, member)
    redis.call('EXPIRE', consumed, history_ttl)
  end
  local ulast = tonumber(redis.call('HGET', user, 'last_ms') or '0')
  if ts > ulast then
    redis.call('HSET', user, 'last_session', ARGV[8], 'last_ms', ts_s)
  else
    redis.call('HSET', user, 'last_session', ARGV[8])
  end
  redis.call('HINCRBY', user, 'events', 1)
  for _, key in ipairs({sess, items, cats, marks}) do redis.call('EXPIRE', key, session_ttl) end
  for _, key in ipairs({user, urecent, seen}) do redis.call('EXPIRE', key, history_ttl) end
end
local ordinal = 0
if kind == 'page_view' then ordinal = tonumber(redis.call('HGET', marks, event_id) or '0') end
-- Return at most `returned` of each list: what serving uses, without paying to ship all of it.
-- A redelivery skips what was pushed after it (unknown once the session expired: then today's lists).
local skip, uskip = 0, 0
local consumed_recent
if duplicate == 1 then
  local pushed = redis.call('HGET', marks, 'p:' .. event_id)
  if pushed then
    local at, uat = string.match(pushed, '^(%d+):(%d+)$')
    skip = math.max(0, tonumber(redis.call('HGET', sess, 'items_pushed') or '0') - tonumber(at))
    uskip = math.max(0, tonumber(redis.call('HGET', user, 'items_pushed') or '0') - tonumber(uat))
  end
  consumed_recent = redis.call('ZREVRANGEBYSCORE', consumed, ts_s, '-inf', 'LIMIT', 0, returned)
else
  consumed_recent = redis.call('ZREVRANGE', consumed, 0, returned - 1)
end
return {duplicate, redis.call('HGETALL', sess), redis.call('LRANGE', items, skip, skip + returned - 1),
        redis.call('HGETALL', cats), redis.call('LRANGE', urecent, uskip, uskip + returned - 1),
        consumed_recent, ordinal}
