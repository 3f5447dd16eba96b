-- Record one consumed notification for a user, atomically: drop it if its id was seen; else remember it and,
-- when it is to be pushed, append it to the user's queue, record the push for the fatigue rules, and trim.
-- Every outcome, a duplicate too, reports the user's pending snapshot for the index (see common.lua): a redelivery
-- after a crash between this script and the index write puts the entry there.
-- KEYS: queue, cursor, history, items, seen, version
-- ARGV: now_ms, notification_id, payload ('' when suppressed), maxlen, pending_ttl_ms, queue_key_ttl_ms,
--       dedupe_ttl_ms, repeat_window_ms, item members...
-- Returns {status, stream id or '', expired by age, expired by overflow, version, pending}.
local queue, cursor_key, history, items, seen, version_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now, nid, payload = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local maxlen, ttl_ms, key_ttl_ms = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local dedupe_ttl_ms, repeat_window_ms = tonumber(ARGV[7]), tonumber(ARGV[8])

local function outcome(status, id, aged, overflow)
  local version, pending = snapshot(queue, redis.call('GET', cursor_key) or '0-0', version_key, now, key_ttl_ms)
  return {status, id, aged, overflow, version, pending}
end

if redis.call('ZSCORE', seen, nid) then return outcome('duplicate', '', 0, 0) end

local id = ''
if payload ~= '' then
  -- Ids never go backwards, even if this clock is behind the last writer's: resume relies on their order.
  local ms = int(now)
  if redis.call('EXISTS', queue) == 1 then
    local info = redis.call('XINFO', 'STREAM', queue)
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        local last_ms = parse_id(info[i + 1])
        if digits_after(last_ms, ms) then ms = last_ms end
      end
    end
  end
  -- The first write: when Redis refuses it (no id can follow the last one) the script fails having changed
  -- nothing, so the redelivered notification is not mistaken for a duplicate.
  id = redis.call('XADD', queue, ms .. '-*', 'n', payload)
end

redis.call('ZADD', seen, int(now), nid)
redis.call('ZREMRANGEBYSCORE', seen, '-inf', int(now - dedupe_ttl_ms))
redis.call('PEXPIRE', seen, int(dedupe_ttl_ms))
if payload == '' then return outcome('suppressed', '', 0, 0) end

redis.call('ZADD', history, int(now), nid)
redis.call('ZREMRANGEBYSCORE', history, '-inf', int(now - 86400000))
redis.call('PEXPIRE', history, 86400000)
for i = 9, #ARGV do redis.call('ZADD', items, int(now), ARGV[i]) end
if repeat_window_ms > 0 then
  redis.call('ZREMRANGEBYSCORE', items, '-inf', int(now - repeat_window_ms))
  redis.call('PEXPIRE', items, int(repeat_window_ms))
end

local cursor = redis.call('GET', cursor_key) or '0-0'
local aged, overflow = expire(queue, cursor, now, ttl_ms, maxlen)
redis.call('PEXPIRE', queue, int(key_ttl_ms))
return outcome('queued', id, aged, overflow)
