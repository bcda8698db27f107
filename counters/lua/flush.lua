-- flush.lua — apply one entity's deltas for one minute, return what changed
-- (or, once a minute per entity, its whole windows).
--
-- KEYS[1]  entity base, e.g. "rw:{acct:alice@pref.example.jp}" (the hash tag
--          keeps every key of the entity in one cluster slot; see SCHEMA.md)
-- ARGV     sensor, run, seq:sub, now, minute, mode, sample,
--          nf, field1, value1, ..., fieldN, valueN,
--          nk, kind1, nm1, member..., kind2, nm2, member...
--   sensor/run/seq:sub  make the call idempotent: E:seq[sensor] =
--                   "run:seq:sub" of the last call applied; a replayed one
--                   (same run, (seq, sub) not above it) changes nothing and
--                   still returns the windows. sub numbers the entity's
--                   calls within batch seq (one per minute it touches: a
--                   batch can span a minute boundary), in the order sent.
--                   "seq:sub:pseq:psub": pseq:psub is the entity's call
--                   before this one in the same pipeline. Unless that one
--                   is the last applied, this call is not applied either
--                   and the reply is an error (RWGAP): Redis refused the
--                   earlier call (BUSY while another script ran, NOSCRIPT,
--                   OOM...) and executed this one, which would make the
--                   earlier call look like a replay when the round is sent
--                   again, and its counts would be lost.
--   now      packet time (seconds) of the flush: TTLs and windows are
--            computed from it, never from Redis' clock.
--   minute   the minute (unix time / 60) the deltas belong to.
--   mode     "0": return only the buckets this call wrote to (the sensor
--            keeps the rest of the window from an earlier call); "1": the
--            whole windows, and the distinct counts of the kinds listed
--            after a colon ("1:rdom,acct"); "2": as "1", and also fold
--            completed hours into E:base and return it. Reading back a
--            window is 22 HGETALL and two multi-key PFCOUNT per kind: the
--            sensor asks for it when it learns of an entity and then every
--            few minutes, not at every flush.
--   sample   a subject to keep in E:sample ("" = none).
-- Returns { applied, buckets10m, buckets1h, distinct, base }: the buckets of
-- each window (see window() below; mode 0: only the one bucket of each
-- window this call wrote to, if any), distinct = {kind, count10m, count1h,
-- ...} or {} in mode 0, base = {ewma_msgs, ewma_rcpts, ewma_tls_sessions,
-- hours} or {}.
local E = KEYS[1]
local sensor, run = ARGV[1], ARGV[2]
local seq, sub, pseq, psub = string.match(ARGV[3], '^(%d+):(%d+):(%d+):(%d+)$')
if not seq then
  seq, sub = string.match(ARGV[3], '^(%d+):?(%d*)$')
end
seq, sub = tonumber(seq), tonumber(sub) or 1 -- "seq" alone: the first call of the batch
pseq, psub = tonumber(pseq), tonumber(psub)
local now = tonumber(ARGV[4])
local minute = tonumber(ARGV[5])
local mode, dkinds = string.match(ARGV[6], '^(%d):?(.*)$')
local full = mode == '1' or mode == '2'
local want_base = mode == '2'
local sample = ARGV[7]

local RES = {                      -- resolution, bucket seconds, window seconds
  { 'm', 60, 600 }, { 'f', 300, 3600 }, { 'h', 3600, 86400 },
}

local function ttl(bucket, len, window)
  return math.floor((bucket + 1) * len + window + 60 - now)
end

-- idempotency
local applied = 1
local lrun, lseq, lsub
local last = redis.call('HGET', E .. ':seq', sensor)
if last then
  lrun, lseq, lsub = string.match(last, '^(.*):(%d+):(%d+)$')
  if not lrun then -- written before calls had a sub: one per batch
    lrun, lseq = string.match(last, '^(.*):(%d+)$')
    lsub = math.huge
  end
  lseq, lsub = tonumber(lseq), tonumber(lsub)
  if lrun == run and (lseq > seq or (lseq == seq and lsub >= sub)) then applied = 0 end
end
if applied == 1 and pseq and not (lrun == run and lseq == pseq and lsub == psub) then
  return redis.error_reply('RWGAP ' .. E .. ': the call before ' .. seq .. ':' .. sub ..
    ' in this pipeline was not applied')
end

local i = 8
local nf = tonumber(ARGV[i]); i = i + 1
local fields = {}
for _ = 1, nf do
  fields[#fields + 1] = { ARGV[i], tonumber(ARGV[i + 1]) }
  i = i + 2
end
local nk = tonumber(ARGV[i]); i = i + 1
local kinds = {}
for _ = 1, nk do
  local kind, nm = ARGV[i], tonumber(ARGV[i + 1])
  local members = {}
  for j = 1, nm do members[j] = ARGV[i + 1 + j] end
  kinds[#kinds + 1] = { kind, members }
  i = i + 2 + nm
end

if applied == 1 then
  local t = minute * 60
  for _, r in ipairs(RES) do
    local res, len, window = r[1], r[2], r[3]
    local b = math.floor(t / len)
    local life = ttl(b, len, window)
    if life > 0 then
      -- A TTL is set when the call creates the key (or a field in it, or
      -- changes an HLL): whoever creates a key gives it its TTL, and keys
      -- already holding one are not touched again on every flush.
      local ck = E .. ':c:' .. res .. ':' .. b
      local fresh = false
      for j, fv in ipairs(fields) do
        local v = redis.call('HINCRBY', ck, fv[1], fv[2])
        if j == 1 and v == fv[2] then fresh = true end
      end
      if fresh then redis.call('EXPIRE', ck, life) end
      for _, k in ipairs(kinds) do
        if #k[2] > 0 then
          local hk = E .. ':u:' .. k[1] .. ':' .. res .. ':' .. b
          if redis.call('PFADD', hk, unpack(k[2])) == 1 then
            redis.call('EXPIRE', hk, life)
          end
        end
      end
    end
  end
  -- Renewed on whole-window reads; and whenever the field is new, so that
  -- a key made by a mode-0 call (E:seq lost meanwhile: a Redis restarted
  -- without persistence, a failover) expires too.
  if redis.call('HSET', E .. ':seq', sensor, run .. ':' .. seq .. ':' .. sub) == 1 or full then
    redis.call('EXPIRE', E .. ':seq', 90000)
  end
  if sample ~= '' then
    redis.call('SET', E .. ':sample', sample, 'EX', 86400)
  end
end

-- The buckets of a window ending at `now`, each non-empty one as
-- bucket, n, field1, value1, ... fieldN, valueN: the sensor keeps them per
-- bucket so that its view of the window slides exactly as time passes.
local function window(res, len, count)
  local flat = {}
  local last_b = math.floor(now / len)
  local first_b = last_b - count + 1
  if not full then               -- the bucket written to, if in the window
    local wb = math.floor(minute * 60 / len)
    if wb < first_b or wb > last_b then return flat end
    first_b, last_b = wb, wb
  end
  for b = first_b, last_b do
    local h = redis.call('HGETALL', E .. ':c:' .. res .. ':' .. b)
    if #h > 0 then
      flat[#flat + 1] = b
      flat[#flat + 1] = #h / 2
      for j = 1, #h do flat[#flat + 1] = h[j] end
    end
  end
  return flat
end

local function distinct(kind, res, len, count)
  local keys = {}
  local last_b = math.floor(now / len)
  for b = last_b - count + 1, last_b do
    keys[#keys + 1] = E .. ':u:' .. kind .. ':' .. res .. ':' .. b
  end
  return redis.call('PFCOUNT', unpack(keys))
end

local win10 = window('m', 60, 10)
local win60 = window('f', 300, 12)
local dist = {}
if full then
  for kind in string.gmatch(dkinds or '', '%a+') do
    dist[#dist + 1] = kind
    dist[#dist + 1] = distinct(kind, 'm', 60, 10)
    dist[#dist + 1] = distinct(kind, 'f', 300, 12)
  end
end

-- baseline: EWMA of earlier, completed hours (SCHEMA.md)
local base = {}
if want_base then
  local ALPHA = 0.1
  local bk = E .. ':base'
  local cur = math.floor(now / 3600)
  local b = redis.call('HMGET', bk, 'hour', 'hours', 'ewma_msgs', 'ewma_rcpts', 'ewma_tls_sessions')
  local hour = tonumber(b[1])
  local hours = tonumber(b[2]) or 0
  local e = { tonumber(b[3]) or 0, tonumber(b[4]) or 0, tonumber(b[5]) or 0 }
  if hour == nil then
    hour = cur - 1           -- history starts now: earlier hours are unknown
  elseif hour < cur - 1 then
    local gap = cur - 1 - hour
    if gap > 48 then         -- long silence: fold the zeros in closed form
      local f = (1 - ALPHA) ^ (gap - 24)
      for j = 1, 3 do e[j] = e[j] * f end
      hours = hours + gap - 24
      hour = cur - 1 - 24
    end
    for h = hour + 1, cur - 1 do
      local v = redis.call('HMGET', E .. ':c:h:' .. h, 'msgs', 'rcpts', 'tls_sessions')
      for j = 1, 3 do
        e[j] = ALPHA * (tonumber(v[j]) or 0) + (1 - ALPHA) * e[j]
      end
      hours = hours + 1
    end
    hour = cur - 1
  end
  redis.call('HSET', bk, 'hour', hour, 'hours', hours, 'ewma_msgs', tostring(e[1]),
    'ewma_rcpts', tostring(e[2]), 'ewma_tls_sessions', tostring(e[3]))
  redis.call('EXPIRE', bk, 30 * 86400)
  base = { tostring(e[1]), tostring(e[2]), tostring(e[3]), hours }
end

return { applied, win10, win60, dist, base }
