-- Decide, for a batch of one user's finished tasks, which are a tool transition within a session, each event once.
-- KEYS (one user's, one hash tag): 1 observed-event set, 2 counted-transition set (zsets: event id -> ts ms),
--       3 last-tool hash (session, tool).
-- ARGV: 1 ids kept per set, 2 sets' ttl s, 3 last-tool ttl s, 4 number of events e, then per event EVENT_ARGS (5)
--       arguments: event id, ts ms, session id, tool, the previous tool from the session context ("": none).
-- The last-tool hash says what the user finished before in the same session: a tool that follows another one in
-- one session counts as a transition, and only when the caller's previous tool is the one the hash holds.
-- Returns per event 1 when its transition previous -> tool counts, else 0; an event seen before (a redelivery, a
-- retried batch) gets the answer it got then and moves nothing, so the caller's per-shard counts are added alike.
local EVENT_ARGS = 5
local function fail(what, value)
  return redis.error_reply('tool_session_transitions_observe: ' .. what .. ', got "' .. string.sub(tostring(value), 1, 64) .. '"')
end
local function count(value)
  local n = tonumber(value)
  if n == nil or n ~= n or n < 0 or n ~= math.floor(n) or n >= 9007199254740992 then return nil end
  return n
end
local kept, ttl, last_ttl, events = count(ARGV[1]), count(ARGV[2]), count(ARGV[3]), count(ARGV[4])
if #KEYS ~= 3 or kept == nil or kept < 1 or ttl == nil or ttl < 1 or last_ttl == nil or last_ttl < 1
    or events == nil then
  return fail('bad header', table.concat({#KEYS, ARGV[1], ARGV[2], ARGV[3], ARGV[4]}, ' '))
end
if #ARGV ~= 4 + EVENT_ARGS * events then return fail('argument count does not match', #ARGV) end
-- Check everything before the first write: all or nothing.
for e = 0, events - 1 do
  local i = 5 + EVENT_ARGS * e
  if ARGV[i] == '' or count(ARGV[i + 1]) == nil or ARGV[i + 2] == '' or ARGV[i + 3] == '' then
    return fail('bad event at argument ' .. i, ARGV[i])
  end
end

local seen, counted, last_key = KEYS[1], KEYS[2], KEYS[3]
local result = {}
for e = 0, events - 1 do
  local i = 5 + EVENT_ARGS * e
  local event_id, ts, session, tool, previous = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local transition = 0
  if redis.call('ZADD', seen, 'NX', ts, event_id) == 1 then
    redis.call('ZREMRANGEBYRANK', seen, 0, -(kept + 1))
    redis.call('EXPIRE', seen, ttl)
    local state = redis.call('HMGET', last_key, 'session', 'tool')
    if state[1] == session and state[2] ~= tool and previous ~= '' and state[2] == previous then
      transition = 1
      redis.call('ZADD', counted, ts, event_id)
      redis.call('ZREMRANGEBYRANK', counted, 0, -(kept + 1))
      redis.call('EXPIRE', counted, ttl)
    end
    redis.call('HSET', last_key, 'session', session, 'tool', tool)
    redis.call('EXPIRE', last_key, last_ttl)
  elseif redis.call('ZSCORE', counted, event_id) then
    transition = 1
  end
  result[#result + 1] = transition
end
return result
