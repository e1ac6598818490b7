if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('SREM', KEYS[2], ARGV[2])
gc_unlinked(ARGV[2], ARGV[1])
return 1
