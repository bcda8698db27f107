-- stats.lua — all-time totals in P stats (no TTL: a monitoring contract).
-- KEYS[1]  the stats hash ("rw:stats")
-- ARGV     sensor, run, seq, field1, incr1, ...
-- Idempotent per batch through the internal field "_seq:SENSOR".
local K = KEYS[1]
local sensor, run, seq = ARGV[1], ARGV[2], tonumber(ARGV[3])
local last = redis.call('HGET', K, '_seq:' .. sensor)
if last then
  local lrun, lseq = string.match(last, '^(.*):(%d+)$')
  if lrun == run and tonumber(lseq) >= seq then return 0 end
end
for i = 4, #ARGV, 2 do
  redis.call('HINCRBY', K, ARGV[i], ARGV[i + 1])
end
redis.call('HSET', K, '_seq:' .. sensor, run .. ':' .. seq)
return 1
