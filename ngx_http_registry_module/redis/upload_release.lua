if ours(redis.call('HGET', KEYS[1], 'busy'), ARGV[1]) then
  redis.call('HDEL', KEYS[1], 'busy')
end
return 1
