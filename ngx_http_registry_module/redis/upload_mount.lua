if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0
   or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
if quota_storage(ARGV[2], ARGV[1], redis.call('HGET', KEYS[2], 'size')) then return 0 end
redis.call('SADD', KEYS[3], ARGV[1])
gc_linked(ARGV[2], ARGV[1], redis.call('SADD', KEYS[4], ARGV[2]))
redis.call('ZADD', KEYS[5], 0, ARGV[2])
return 1
