-- alert.lua — one alert, deduplicated across sensors.
-- KEYS[1]  cooldown key  P{alerts}:cool:RULE:MEASURE:WINDOW:TYPE:ID
-- KEYS[2]  the stream    P alerts
-- KEYS[3]  the stats     P stats
-- ARGV     cooldown_seconds, value, maxlen, rule, severity, field1, value1, ...
-- One alert per (rule, measure, window, entity) per cooldown; a new one if
-- the value at least doubled since the last alert (escalation). Returns 1
-- added, 2 escalated, 0 a duplicate (another sensor, or this one before a
-- reconnect, said it).
local cool, value = tonumber(ARGV[1]), tonumber(ARGV[2])
local maxlen, rule, severity = ARGV[3], ARGV[4], ARGV[5]
local prev = redis.call('GET', KEYS[1])
local result
if not prev then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', math.max(1, math.floor(cool)))
  result = 1
elseif value >= 2 * tonumber(prev) and value > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  result = 2
else
  return 0
end
local f = {}
for i = 6, #ARGV do f[#f + 1] = ARGV[i] end
if result == 2 then f[#f + 1] = 'escalated'; f[#f + 1] = '1' end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', unpack(f))
redis.call('HINCRBY', KEYS[3], 'alerts', 1)
redis.call('HINCRBY', KEYS[3], 'alerts:' .. rule .. ':' .. severity, 1)
return result
