#!lua flags=no-writes
-- exporter.lua — relaywatch's metrics for the Prometheus redis_exporter.
--
-- Run by redis_exporter 1.45 (`--script counters/exporter.lua`) as
-- `EVAL <this file> 0 0` at every scrape, as its own ACL user (users.acl:
-- exporter, read-only keys %R~rw:*). The shebang flag `no-writes` makes Redis
-- refuse any write from this script and lets it run on a read-only replica
-- and when Redis is out of memory (Redis 7.0+).
--
-- Reply: a flat array key1, value1, key2, value2, ... of bulk strings. The
-- exporter turns each pair into `redis_script_values{key="KEY"} VALUE`, so
-- every value is a number written as a string (an integer reply, or a value
-- that is not a number, fails the whole scrape: redis_up becomes 0). Labels
-- travel inside the key, separated by '|'; deploy/prometheus/prometheus.yml
-- splits them and gives clean metric names:
--
--   stats|FIELD                every field of P stats but `_*` and `alerts:*:*`
--                              -> relaywatch_stats_total{field}
--                              (the SCHEMA.md fields are always there, 0 if absent)
--   alerts|RULE|SEVERITY       P stats `alerts:RULE:SEVERITY`, every known rule and
--                              severity (0 if absent) -> relaywatch_alerts_total
--   sensor|NAME|FIELD          numeric fields of P sensor:NAME, plus `up` (1: the
--                              hash is there, the sensor flushed lately; 0: it
--                              expired) and `last_seen` (P sensors score, unix s)
--                              -> relaywatch_sensor{sensor,field}
--   sensor_info|NAME|VERSION   1 -> relaywatch_sensor_info{sensor,version}
--   sensor_checksums|NAME|MODE 1: P sensor:NAME `checksums`, whether TCP checksums
--                              are verified (on, off, auto, auto-on, auto-off)
--                              -> relaywatch_sensor_checksums{sensor,mode}
--   top_account|ID, top_fingerprint|ID, top_client|ID
--                              messages in the 10-minute window, top TOP_N each
--                              -> relaywatch_top_msgs_10m{account|fingerprint|client}
--   top|window_end             unix seconds where that window ends (packet time)
--   top|lookup                 1: the sensors' newest minute is known
--                              (P{top}:newest), 0: no top data
--                              -> relaywatch_top_window_end_seconds, relaywatch_top_lookup
--   stream|length              XLEN P alerts -> relaywatch_stream_length
--   stream|last_entry          unix seconds of the newest entry's ID (when Redis
--                              received the alert) -> relaywatch_stream_last_entry_seconds
--   stream_lag|GROUP, stream_pending|GROUP, stream_consumers|GROUP
--                              XINFO GROUPS -> relaywatch_stream_lag{group}, ...
--   exporter|errors            reads that failed in this run (ACL, wrong type);
--   exporter|skipped           names left out (not printable ASCII, too long)
--                              -> relaywatch_exporter_errors, relaywatch_exporter_skipped
--
-- Entity IDs are exported as they are in the keys: percent-escaped by the
-- sensor (SCHEMA.md), pseudonymised accounts as `h:...`.
--
-- The 10-minute window ends with "now" in packet time, like every window
-- in Redis: the newest minute that has top sets P{top}:KIND:MINUTE, which
-- counters/lua/top.lua keeps in P{top}:newest (with that minute's TTL: it
-- is gone when the minute's sets are). One GET, whatever the size of the
-- keyspace and wherever the minute is (a replayed capture writes the
-- minutes of its own time). The script runs atomically at every scrape, so
-- it walks no keyspace: the earlier probe of 1,443 minutes with EXISTS and
-- a SCAN of up to 100,000 keys held Redis about 100 ms a scrape on a
-- million keys whenever no top key was near the wall clock, and could
-- still miss the window.
--
-- Every read is guarded (redis.pcall): a failed read is counted in
-- exporter|errors and the rest is still reported, so that a missing key, a
-- key of another type or an ACL refusal never marks Redis down. Every loop
-- is bounded (the constants below).
--
-- The prefix: P is the sensor's --redis-prefix. EVAL gets no arguments from
-- redis_exporter, so it is written here; to use another prefix, change the
-- next line (and ~rw:* in deploy/redis/users.acl).
local P = 'rw:'

local TOP_N = 20               -- rows per top list
local TOP_MINUTES = 10         -- the window: 10 per-minute top sets
local TOP_MEMBERS = 1000       -- read per top set (the sensor keeps 1000)
local SENSORS_MAX = 64         -- sensors reported, most recently seen first
local GROUPS_MAX = 64          -- consumer groups reported
local NAME_MAX = 320           -- longest name put in a key (SCHEMA.md cuts IDs there)

-- SCHEMA.md "Global keys": the fields of P stats, and the rules and severities
-- of the alert stream. Reported even when absent (0), so that a first alert
-- shows as an increase from 0 in Prometheus.
local STATS_FIELDS = { 'msgs', 'rcpts', 'rcpts_rejected', 'bytes', 'sessions',
  'tls_sessions', 'auth_failures', 'alerts' }
local RULES = { 'open_relay', 'account_burst', 'fingerprint_burst', 'random_subject_flood',
  'display_spoof', 'auth_failures', 'recipient_rejects', 'tls_blind_burst' }
local SEVERITIES = { 'low', 'medium', 'high', 'critical' }
local TOP_KINDS = { { 'acct', 'top_account' }, { 'fp', 'top_fingerprint' },
  { 'ip', 'top_client' } }

local out = {}                 -- the reply, flat
local seen = {}                -- keys already in out (a key twice fails the scrape)
local errors, skipped = 0, 0

-- A redis.pcall that counts errors and returns nil for them.
local function read(...)
  local ok, r = pcall(redis.pcall, ...)
  if not ok or (type(r) == 'table' and r.err) then
    errors = errors + 1
    return nil
  end
  return r
end

-- A name fit for a Prometheus label: printable ASCII, bounded.
local function safe(s)
  if type(s) ~= 'string' or #s == 0 or #s > NAME_MAX or s:find('[^\32-\126]') then
    skipped = skipped + 1
    return false
  end
  return true
end

-- A finite number from a Redis value, or nil.
local function num(v)
  local n = tonumber(v)
  if n == nil or n ~= n or n == math.huge or n == -math.huge then return nil end
  return n
end

local function emit(key, value)
  local n = num(value)
  if n == nil or seen[key] then return end
  seen[key] = true
  out[#out + 1] = key
  -- integers without an exponent up to 2^53; others with 15 digits
  if n == math.floor(n) and math.abs(n) < 2 ^ 53 then
    out[#out + 1] = string.format('%d', n)
  else
    out[#out + 1] = string.format('%.15g', n)
  end
end

-- Run one section; a bug or a surprise in one does not lose the others.
local function section(f)
  local ok = pcall(f)
  if not ok then errors = errors + 1 end
end

-- HGETALL as a table, {} when missing or refused.
local function hash(key)
  local h = read('HGETALL', key)
  local t = {}
  if type(h) == 'table' then
    for i = 1, #h - 1, 2 do t[h[i]] = h[i + 1] end
  end
  return t
end

-- P stats -------------------------------------------------------------------------
section(function()
  local s = hash(P .. 'stats')
  for _, f in ipairs(STATS_FIELDS) do emit('stats|' .. f, s[f] or 0) end
  for _, r in ipairs(RULES) do
    for _, sev in ipairs(SEVERITIES) do
      local f = 'alerts:' .. r .. ':' .. sev
      emit('alerts|' .. r .. '|' .. sev, s[f] or 0)
    end
  end
  local extra = {}
  for f in pairs(s) do extra[#extra + 1] = f end
  table.sort(extra)
  for _, f in ipairs(extra) do
    if f:sub(1, 1) ~= '_' then
      local r, sev = f:match('^alerts:([^:|]+):([^:|]+)$')
      if r then
        if safe(r) and safe(sev) then emit('alerts|' .. r .. '|' .. sev, s[f]) end
      elseif safe(f) and not f:find('|', 1, true) then
        emit('stats|' .. f, s[f])
      end
    end
  end
end)

-- sensors: P sensors (zset, score = last flush, wall clock) + P sensor:NAME ---------
section(function()
  local z = read('ZREVRANGE', P .. 'sensors', 0, SENSORS_MAX - 1, 'WITHSCORES')
  if type(z) ~= 'table' then return end
  for i = 1, #z - 1, 2 do
    local name = z[i]
    if safe(name) then
      local h = read('HGETALL', P .. 'sensor:' .. name)
      local up = 0
      if type(h) == 'table' and #h > 0 then
        up = 1
        for j = 1, #h - 1, 2 do
          local f, v = h[j], h[j + 1]
          if f == 'version' then
            if safe(v) then emit('sensor_info|' .. name .. '|' .. v, 1) end
          elseif f == 'checksums' then
            if safe(v) then
              if v:find('|', 1, true) then skipped = skipped + 1   -- the label's end
              else emit('sensor_checksums|' .. name .. '|' .. v, 1) end
            end
          elseif f ~= 'up' and f ~= 'last_seen' and safe(f) and not f:find('|', 1, true) then
            emit('sensor|' .. name .. '|' .. f, v)   -- skipped if not a number
          end
        end
      end
      emit('sensor|' .. name .. '|up', up)
      emit('sensor|' .. name .. '|last_seen', z[i + 1])
    end
  end
end)

-- top accounts, fingerprints, clients over the last 10 minutes ----------------------
section(function()
  local T = P .. '{top}:'
  local raw = read('GET', T .. 'newest')     -- false when absent
  local now = num(raw)
  if raw and not (now and now == math.floor(now) and now >= 0 and now < 2 ^ 31) then
    errors, now = errors + 1, nil            -- not a minute: not written by top.lua
  end
  local lookup = now and 1 or 0
  emit('top|lookup', lookup)
  if not now then return end
  emit('top|window_end', (now + 1) * 60)
  for _, kind in ipairs(TOP_KINDS) do
    local sum, names = {}, {}
    for m = now - TOP_MINUTES + 1, now do
      local z = read('ZREVRANGE', T .. kind[1] .. ':' .. m, 0, TOP_MEMBERS - 1, 'WITHSCORES')
      if type(z) == 'table' then
        for i = 1, #z - 1, 2 do
          local id, score = z[i], num(z[i + 1])
          if score then
            if sum[id] == nil then
              sum[id] = 0
              names[#names + 1] = id
            end
            sum[id] = sum[id] + score
          end
        end
      end
    end
    table.sort(names, function(a, b)
      if sum[a] ~= sum[b] then return sum[a] > sum[b] end
      return a < b
    end)
    local n = 0
    for _, id in ipairs(names) do
      if n >= TOP_N then break end
      if safe(id) then
        emit(kind[2] .. '|' .. id, sum[id])
        n = n + 1
      end
    end
  end
end)

-- the alert stream and its consumer groups ----------------------------------------
section(function()
  local S = P .. 'alerts'
  local len = read('XLEN', S)
  if len == nil then return end
  emit('stream|length', len)
  if read('EXISTS', S) ~= 1 then return end
  local last = read('XREVRANGE', S, '+', '-', 'COUNT', 1)
  if type(last) == 'table' and last[1] then
    local ms = num(tostring(last[1][1]):match('^(%d+)%-'))
    if ms then emit('stream|last_entry', ms / 1000) end
  end
  local g = read('XINFO', 'GROUPS', S)
  if type(g) ~= 'table' then return end
  for i = 1, math.min(#g, GROUPS_MAX) do
    local info = {}
    for j = 1, #g[i] - 1, 2 do info[g[i][j]] = g[i][j + 1] end
    local name = info['name']
    if safe(name) then
      emit('stream_consumers|' .. name, info['consumers'])
      emit('stream_pending|' .. name, info['pending'])
      -- Redis 7.0: nil when it cannot tell (after XDEL or XSETID): left out
      if info['lag'] then emit('stream_lag|' .. name, info['lag']) end
    end
  end
end)

emit('exporter|errors', errors)
emit('exporter|skipped', skipped)
return out
