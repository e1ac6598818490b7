redis.call('HSET', KEYS[1], 'repo', ARGV[1], 'offset', '0',
           'sha', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
upload_touch(KEYS[1])
return 1
