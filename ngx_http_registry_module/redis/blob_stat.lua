-- flags: no-writes
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then
  return false
end
return redis.call('HMGET', KEYS[2], 'size', 'key')
