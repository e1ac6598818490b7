local u = redis.call('HMGET', KEYS[1], 'offset', 'busy')
if not u[1] then return -1 end
if u[1] ~= ARGV[1] then return 0 end
if taken(u[2]) then return busy(u[2]) end
if not tail_add(KEYS[1], #ARGV[4], tonumber(ARGV[6] or '0')) then return 'full' end
redis.call('APPEND', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[1], 'offset', ARGV[2], 'sha', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
upload_touch(KEYS[1])
return 1
