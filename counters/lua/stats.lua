-- stats.lua — all-time totals in P stats (no TTL: a monitoring contract).
-- KEYS[1]  the stats hash ("rw:stats")
-- ARGV     sensor, run, seq, field1, incr1, ...
-- Idempotent per batch through the internal field "_seq:SENSOR". seq may be
-- "seq:pseq", pseq the batch of this sensor's call before it in the same
-- pipeline: unless that one is the last applied, this one is not applied
-- (error RWGAP; see flush.lua).
local K = KEYS[1]
local sensor, run = ARGV[1], ARGV[2]
local seq, pseq = string.match(ARGV[3], '^(%d+):?(%d*)$')
seq, pseq = tonumber(seq), tonumber(pseq)
local lrun, lseq
local last = redis.call('HGET', K, '_seq:' .. sensor)
if last then
  lrun, lseq = string.match(last, '^(.*):(%d+)$')
  lseq = tonumber(lseq)
  if lrun == run and lseq >= seq then return 0 end
end
if pseq and not (lrun == run and lseq == pseq) then
  return redis.error_reply('RWGAP ' .. K .. ': batch ' .. pseq .. ' before ' .. seq ..
    ' in this pipeline was not applied')
end
for i = 4, #ARGV, 2 do
  redis.call('HINCRBY', K, ARGV[i], ARGV[i + 1])
end
redis.call('HSET', K, '_seq:' .. sensor, run .. ':' .. seq)
return 1
