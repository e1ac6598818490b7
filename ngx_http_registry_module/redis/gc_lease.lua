-- The collector's lease (gc.c): one collection at a time across every
-- worker and host sharing this Redis.  ARGV: token, "take" or "drop".
-- take: 1 when the lease is ours now (for 120 s, renewed by every batch:
-- gc_hold), else {the holder's token, milliseconds left}.  drop: ends
-- our lease, if it still is ours.
local t = redis.call('GET', 'gc:lease')
if ARGV[2] == 'drop' then
    if t == ARGV[1] then redis.call('DEL', 'gc:lease') end
    return 1
end
if t and t ~= ARGV[1] then
    return {t, redis.call('PTTL', 'gc:lease')}
end
redis.call('SET', 'gc:lease', ARGV[1], 'PX', 120000)
return 1
