local u = redis.call('HMGET', KEYS[1], 'offset', 'busy')
if not u[1] then return -1 end
if u[1] ~= ARGV[1] then return 0 end
if taken(u[2]) then return busy(u[2]) end
local now = tonumber(redis.call('TIME')[1])
redis.call('ZADD', KEYS[3], now, ARGV[4])
redis.call('HSET', KEYS[1], 'busy',
           ARGV[2] .. ' ' .. (now + tonumber(ARGV[3])))
local e = 0
if KEYS[4] then e = redis.call('EXISTS', KEYS[4]) end
if e == 1 then gc_pin(KEYS[4], KEYS[1]) end
return {redis.call('LLEN', KEYS[2]), e}
