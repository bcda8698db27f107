-- health.lua — sensor health, rewritten at every flush.
-- KEYS[1]  P sensor:NAME     KEYS[2]  P sensors (sorted set of live sensors)
-- ARGV     ttl, name, wallclock_now, field1, value1, ...
local ttl = tonumber(ARGV[1])
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - 86400)
redis.call('EXPIRE', KEYS[2], 86400)
return 1
