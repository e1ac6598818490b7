local u = redis.call('HMGET', KEYS[1], 'offset', 'busy')
if not u[1] then return -1 end
if u[1] ~= ARGV[1] or not ours(u[2], ARGV[4]) then return 0 end
for i = 7, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
redis.call('DEL', KEYS[3])
tail_drop(KEYS[1])
redis.call('HSET', KEYS[1], 'offset', ARGV[2], 'sha', ARGV[3],
           'mpu', ARGV[6])
redis.call('HDEL', KEYS[1], 'busy')
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
upload_touch(KEYS[1])
return 1
