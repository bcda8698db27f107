-- alert.lua — one alert, deduplicated across sensors, cooldowns in packet time.
-- KEYS[1]  cooldown key  P{alerts}:cool:RULE:MEASURE:WINDOW:TYPE:ID (hash ts_us value)
-- KEYS[2]  the stream    P alerts
-- KEYS[3]  the stats     P stats
-- ARGV     cooldown_us, value, maxlen, rule, severity, ts_us, field1, value1, ...
-- One alert per (rule, measure, window, entity) per cooldown of packet time;
-- a new one if the value at least doubled since the last alert (escalation);
-- never the same alert twice (the same time and value).
-- Decided as sensor/detect.c's cool_pass decides, so that the stream holds
-- what the sensor raised: an alert at ts_us is within the cooldown when
-- ts_us < last ts_us + cooldown_us (a time before the last alert's is within
-- it); an alert that goes out, new or escalated, restarts the cooldown at
-- its time (never earlier than the last one's) and is the value to double.
-- Times are integers of microseconds, exact in Lua's doubles (< 2^53).
-- Redis' clock does not decide: in a replay, hours of packet time pass in
-- seconds. The key's TTL only collects garbage: the cooldown plus an hour for
-- alerts that come late (a sensor's queue after an outage).
-- Returns 1 added, 2 escalated, 0 a duplicate (another sensor, or this one
-- before a reconnect, said it).
local cool_us, value = tonumber(ARGV[1]), tonumber(ARGV[2])
local maxlen, rule, severity = ARGV[3], ARGV[4], ARGV[5]
local ts_us = tonumber(ARGV[6])
local last = redis.call('HMGET', KEYS[1], 'ts_us', 'value')
local last_ts, last_value = tonumber(last[1]), tonumber(last[2])
local result = 1
-- The same alert said twice (the same time and value: a resend after a lost
-- reply) is one, whatever the cooldown; with a cooldown of 0 nothing else
-- would hold it back.
if last_ts and last_value and ts_us == last_ts and value == last_value then
  return 0
end
if last_ts and last_value and ts_us < last_ts + cool_us then
  if not (value >= 2 * last_value and value > 0) then
    return 0
  end
  result = 2
  if ts_us < last_ts then
    ts_us = last_ts
  end
end
redis.call('HSET', KEYS[1], 'ts_us', string.format('%.0f', ts_us), 'value', ARGV[2])
redis.call('EXPIRE', KEYS[1], math.floor(cool_us / 1000000) + 3600)
local f = {}
for i = 7, #ARGV do f[#f + 1] = ARGV[i] end
if result == 2 then f[#f + 1] = 'escalated'; f[#f + 1] = '1' end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', unpack(f))
redis.call('HINCRBY', KEYS[3], 'alerts', 1)
redis.call('HINCRBY', KEYS[3], 'alerts:' .. rule .. ':' .. severity, 1)
return result
