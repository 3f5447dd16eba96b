-- Count a batch of finished tasks' tool transitions within their sessions, each event at most once.
-- KEYS: every key touched (each user's observed-event set and last-tool hash, popularity, transition zsets), once.
-- ARGV: 1 max transition list length, 2 observed ids kept per user, 3 observed-set ttl s, 4 last-tool ttl s,
--       5 number of events e, then per event EVENT_ARGS (9) arguments: observed-set key index, event id, ts ms,
--       last-tool key index, session id, tool, popularity key index, next-tool key index of the previous tool
--       (0: none), the previous tool ("": none).
-- The user's last-tool hash (session, tool) says what was finished before in the same session: only a tool that
-- follows another one in one session counts as a transition, and only when the caller's previous tool (from the
-- session context, which lets the caller declare its key) is the one the hash holds.
-- An event id already in its user's observed set (a redelivery, a retried batch) adds nothing and moves nothing.
-- Returns the number of events counted.
local EVENT_ARGS = 9
local function fail(what, value)
  return redis.error_reply('tool_session_transitions_observe: ' .. what .. ', got "' .. string.sub(tostring(value), 1, 64) .. '"')
end
local function count(value)
  local n = tonumber(value)
  if n == nil or n ~= n or n < 0 or n ~= math.floor(n) or n >= 9007199254740992 then return nil end
  return n
end
local cap, kept, ttl, last_ttl, events = count(ARGV[1]), count(ARGV[2]), count(ARGV[3]), count(ARGV[4]), count(ARGV[5])
if cap == nil or cap < 1 or kept == nil or kept < 1 or ttl == nil or ttl < 1 or last_ttl == nil or last_ttl < 1
    or events == nil then
  return fail('bad header', table.concat({ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]}, ' '))
end
if #ARGV ~= 5 + EVENT_ARGS * events then return fail('argument count does not match', #ARGV) end
-- Check everything before the first write: all or nothing.
for e = 0, events - 1 do
  local i = 6 + EVENT_ARGS * e
  local next_index = count(ARGV[i + 7])
  if KEYS[count(ARGV[i])] == nil or ARGV[i + 1] == '' or count(ARGV[i + 2]) == nil or KEYS[count(ARGV[i + 3])] == nil
      or ARGV[i + 4] == '' or ARGV[i + 5] == '' or KEYS[count(ARGV[i + 6])] == nil
      or next_index == nil or (next_index > 0 and (KEYS[next_index] == nil or ARGV[i + 8] == '')) then
    return fail('bad event at argument ' .. i, ARGV[i + 1])
  end
end

local touched, counted = {}, 0
for e = 0, events - 1 do
  local i = 6 + EVENT_ARGS * e
  local seen, event_id, ts, last_key = KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2], KEYS[tonumber(ARGV[i + 3])]
  local session, tool, pop = ARGV[i + 4], ARGV[i + 5], KEYS[tonumber(ARGV[i + 6])]
  local next_key, previous = KEYS[tonumber(ARGV[i + 7])], ARGV[i + 8]
  if redis.call('ZADD', seen, 'NX', ts, event_id) == 1 then
    counted = counted + 1
    redis.call('ZREMRANGEBYRANK', seen, 0, -(kept + 1))
    redis.call('EXPIRE', seen, ttl)
    redis.call('ZINCRBY', pop, 1, tool)
    touched[pop] = true
    local state = redis.call('HMGET', last_key, 'session', 'tool')
    if state[1] == session and state[2] ~= tool and next_key ~= nil and state[2] == previous then
      redis.call('ZINCRBY', next_key, 1, tool)
      touched[next_key] = true
    end
    redis.call('HSET', last_key, 'session', session, 'tool', tool)
    redis.call('EXPIRE', last_key, last_ttl)
  end
end
for key, _ in pairs(touched) do
  if redis.call('ZCARD', key) > cap * 1.2 then redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1)) end
end
return counted
