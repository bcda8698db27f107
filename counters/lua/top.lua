-- top.lua — per-minute top-N sorted sets, P{top}:KIND:MINUTE.
-- KEYS[1]  the top base, "rw:{top}" (one slot for every top key)
-- ARGV     sensor, run, seq, now, then groups: kind, minute, n, member1, score1, ...
-- Each set keeps its 1000 best members and lives as long as a 10-minute
-- window needs it (packet time). Idempotent per batch via KEYS[1]:seq; seq
-- may be "seq:pseq" as in stats.lua (a gap in the pipeline: error RWGAP).
-- KEYS[1]:newest holds the newest minute that has top sets, with that
-- minute's TTL: readers (counters/exporter.lua at every scrape) find where
-- the window ends with one GET instead of probing or scanning for it.
local T = KEYS[1]
local sensor, run = ARGV[1], ARGV[2]
local seq, pseq = string.match(ARGV[3], '^(%d+):?(%d*)$')
seq, pseq = tonumber(seq), tonumber(pseq)
local now = tonumber(ARGV[4])
local lrun, lseq
local last = redis.call('HGET', T .. ':seq', sensor)
if last then
  lrun, lseq = string.match(last, '^(.*):(%d+)$')
  lseq = tonumber(lseq)
  if lrun == run and lseq >= seq then return 0 end
end
if pseq and not (lrun == run and lseq == pseq) then
  return redis.error_reply('RWGAP ' .. T .. ': batch ' .. pseq .. ' before ' .. seq ..
    ' in this pipeline was not applied')
end
local newest = tonumber(redis.call('GET', T .. ':newest'))
local newest_life
local i = 5
while i <= #ARGV do
  local kind, minute, n = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local key = T .. ':' .. kind .. ':' .. minute
  local life = math.floor((minute + 1) * 60 + 600 + 60 - now)
  i = i + 3
  if life > 0 then
    for j = 0, n - 1 do
      redis.call('ZINCRBY', key, ARGV[i + 2 * j + 1], ARGV[i + 2 * j])
    end
    redis.call('ZREMRANGEBYRANK', key, 0, -1001)
    redis.call('EXPIRE', key, life)
    if n > 0 and (not newest or minute >= newest) then newest, newest_life = minute, life end
  end
  i = i + 2 * n
end
if newest_life then
  redis.call('SET', T .. ':newest', string.format('%d', newest), 'EX', newest_life)
end
redis.call('HSET', T .. ':seq', sensor, run .. ':' .. seq)
redis.call('EXPIRE', T .. ':seq', 90000)
return 1
