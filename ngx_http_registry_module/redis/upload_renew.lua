if not ours(redis.call('HGET', KEYS[1], 'busy'), ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'busy', ARGV[1] .. ' ' ..
           (tonumber(redis.call('TIME')[1]) + tonumber(ARGV[2])))
return 1
