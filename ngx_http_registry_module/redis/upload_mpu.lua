if not ours(redis.call('HGET', KEYS[1], 'busy'), ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'mpu', ARGV[2])
upload_keep_mpu(KEYS[1], ARGV[2])
return 1
