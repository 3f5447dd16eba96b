-- Apply one event to a user's session context, atomically and idempotently, in one round trip.
-- KEYS: 1 session hash, 2 session recent items (list), 3 session categories (hash),
--       4 user hash, 5 user recent items (list), 6 user consumed (zset "kind:id" -> ts ms),
--       7 user seen event ids (zset event_id -> ts ms, the idempotency window),
--       8 session page-view ordinals (hash event_id -> n), so a redelivered page view keeps its ordinal
-- ARGV: 1 event_id, 2 event type, 3 ts ms, 4 item id or "", 5 category or "", 6 consumed member or "",
--       7 user id, 8 session id, 9 session ttl s, 10 history ttl s, 11 recent cap, 12 dedupe window,
--       13 price or "", 14 how many items of each list to return
-- Returns {duplicate, session fields (flat), session recent items, session categories (flat),
--          user recent items, user consumed members (newest first, capped), page-view ordinal or 0}
local sess, items, cats, user, urecent, consumed, seen, ordinals =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local event_id, kind, ts = ARGV[1], ARGV[2], tonumber(ARGV[3])
local item, category, member = ARGV[4], ARGV[5], ARGV[6]
local session_ttl, history_ttl = tonumber(ARGV[9]), tonumber(ARGV[10])
local cap, window = tonumber(ARGV[11]), tonumber(ARGV[12])

local duplicate = 0
if redis.call('ZADD', seen, 'NX', ts, event_id) == 0 then
  duplicate = 1
else
  redis.call('ZREMRANGEBYRANK', seen, 0, -(window + 1))
  if redis.call('HSETNX', sess, 'started_ms', ts) == 0 then
    local started = tonumber(redis.call('HGET', sess, 'started_ms'))
    if ts < started then redis.call('HSET', sess, 'started_ms', ts) end
  end
  local last = tonumber(redis.call('HGET', sess, 'last_ms') or '0')
  if ts > last then redis.call('HSET', sess, 'last_ms', ts) end
  redis.call('HSET', sess, 'user_id', ARGV[7])
  redis.call('HINCRBY', sess, 'events', 1)
  if kind == 'page_view' then
    local n = redis.call('HINCRBY', sess, 'page_views', 1)
    redis.call('HSET', ordinals, event_id, n)
  end
  if kind == 'session_end' then redis.call('HSET', sess, 'ended_ms', ts) end
  if ARGV[13] ~= '' then
    redis.call('HINCRBYFLOAT', sess, 'price_sum', ARGV[13])
    redis.call('HINCRBY', sess, 'priced_views', 1)
  end
  if item ~= '' then
    redis.call('LPUSH', items, item)
    redis.call('LTRIM', items, 0, cap - 1)
    redis.call('LPUSH', urecent, item)
    redis.call('LTRIM', urecent, 0, cap - 1)
  end
  if category ~= '' then redis.call('HINCRBY', cats, category, 1) end
  if member ~= '' then
    redis.call('ZADD', consumed, ts, member)
    redis.call('EXPIRE', consumed, history_ttl)
  end
  redis.call('HSET', user, 'last_session', ARGV[8])
  local ulast = tonumber(redis.call('HGET', user, 'last_ms') or '0')
  if ts > ulast then redis.call('HSET', user, 'last_ms', ts) end
  redis.call('HINCRBY', user, 'events', 1)
  for _, key in ipairs({sess, items, cats, ordinals}) do redis.call('EXPIRE', key, session_ttl) end
  for _, key in ipairs({user, urecent, seen}) do redis.call('EXPIRE', key, history_ttl) end
end
local ordinal = 0
if kind == 'page_view' then ordinal = tonumber(redis.call('HGET', ordinals, event_id) or '0') end
-- Return at most `returned` of each list: what serving uses, without paying to ship all of it.
local returned = tonumber(ARGV[14])
return {duplicate, redis.call('HGETALL', sess), redis.call('LRANGE', items, 0, returned - 1),
        redis.call('HGETALL', cats), redis.call('LRANGE', urecent, 0, returned - 1),
        redis.call('ZREVRANGE', consumed, 0, returned - 1), ordinal}
