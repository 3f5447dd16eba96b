-- Shared by the push-queue scripts (prepended to each). Stream ids are "ms-seq", two unsigned 64-bit integers.
-- A Lua 5.1 number holds 53 bits, and `..` prints 253402300799000 as 2.53402300799e+14, which Redis refuses
-- as a stream id: ids stay digit strings (compared by length, then text), and every number that becomes a
-- command argument goes through int().
local function int(x)
  return string.format('%d', x)
end

local function digits(text)
  return (string.gsub(text, '^0+(%d)', '%1'))  -- canonical: no leading zeros
end

local function parse_id(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return digits(ms), digits(seq)
end

local function digits_after(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end

local function id_after(a, b)
  local am, as = parse_id(a)
  local bm, bs = parse_id(b)
  if am ~= bm then return digits_after(am, bm) end
  return digits_after(as, bs)
end

-- The index of users with undelivered pushes lies in other slots (`{push-pending:<n>}`), so these scripts only
-- report what it should hold for the user, and the caller writes it there: a snapshot (version, pending), where
-- pending is the ms digits of the oldest notification after the cursor ('' when none; a valid score as they are).
local MAX_PART = '18446744073709551615'

local function next_pending(queue, cursor)
  local cm, cs = parse_id(cursor)
  if cm == MAX_PART and cs == MAX_PART then return '' end  -- nothing follows it, and XRANGE refuses '(' before it
  local nxt = redis.call('XRANGE', queue, '(' .. cursor, '+', 'COUNT', 1)
  if #nxt == 0 then return '' end
  return (parse_id(nxt[1][1]))
end

-- Every snapshot gets a version above the user's last, so the index can drop one that arrives after a newer one.
-- Never behind the clock either: after the key expired (hours without a push) it still starts above the old ones.
local function snapshot(queue, cursor, version_key, now, key_ttl_ms)
  local version = tonumber(redis.call('GET', version_key) or '0') + 1
  if now > version then version = now end
  redis.call('SET', version_key, int(version), 'PX', int(key_ttl_ms))
  return int(version), next_pending(queue, cursor)
end

-- Trim entries past their time to live, then beyond the per-user bound; count those never delivered.
local function expire(queue, cursor, now, ttl_ms, maxlen)
  local aged, overflow = 0, 0
  local cutoff = now - ttl_ms
  if cutoff > 0 then
    local old = redis.call('XRANGE', queue, '-', '(' .. int(cutoff) .. '-0')
    for _, entry in ipairs(old) do
      if id_after(entry[1], cursor) then aged = aged + 1 end
    end
    if #old > 0 then redis.call('XTRIM', queue, 'MINID', int(cutoff)) end
  end
  local excess = redis.call('XLEN', queue) - maxlen
  if excess > 0 then
    local oldest = redis.call('XRANGE', queue, '-', '+', 'COUNT', int(excess))
    for _, entry in ipairs(oldest) do
      if id_after(entry[1], cursor) then overflow = overflow + 1 end
    end
    redis.call('XTRIM', queue, 'MAXLEN', int(maxlen))
  end
  return aged, overflow
end
