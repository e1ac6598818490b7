-- The collector's lease (gc.c): one collection at a time across every
-- worker and host sharing this Redis.
-- KEYS: none (gc:lease, see lib.lua).
-- ARGV: token, "take" or "drop".
-- take: 1 when the lease is ours now (for 120 s, renewed by every batch:
-- gc_hold), else {the holder's token, milliseconds left}.  drop: ends
-- our lease, if it still is ours; 1.
local token, op = ARGV[1], ARGV[2]

local holder = redis.call('GET', key.gc_lease())
if op == 'drop' then
    if holder == token then redis.call('DEL', key.gc_lease()) end
    return 1
end
if holder and holder ~= token then
    return {holder, redis.call('PTTL', key.gc_lease())}
end
redis.call('SET', key.gc_lease(), token, 'PX', 120000)
return 1
