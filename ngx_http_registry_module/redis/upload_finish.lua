if ARGV[6] ~= ''
   and not ours(redis.call('HGET', KEYS[6], 'busy'), ARGV[6]) then
  return -2
end
if ARGV[4] ~= '' and gc_taken(ARGV[7]) then return -2 end
local q = quota_storage(ARGV[2], ARGV[1], ARGV[3])
if q then
  redis.call('DEL', KEYS[6], KEYS[7], KEYS[8])
  tail_drop(KEYS[6])
  upload_done(KEYS[6])
  return q
end
local fresh = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[4] == '' then return -1 end
  redis.call('HSET', KEYS[1], 'size', ARGV[3], 'key', ARGV[4],
             'created', ARGV[5])
  redis.call('SADD', KEYS[4], ARGV[1])
  fresh = 1
end
redis.call('SADD', KEYS[2], ARGV[1])
gc_linked(ARGV[2], ARGV[1], redis.call('SADD', KEYS[3], ARGV[2]))
redis.call('ZADD', KEYS[5], 0, ARGV[2])
redis.call('DEL', KEYS[6], KEYS[7], KEYS[8])
tail_drop(KEYS[6])
redis.call('SREM', KEYS[1] .. ':uploads', KEYS[6])
upload_done(KEYS[6])
if fresh == 1 or ARGV[4] == '' then
  redis.call('ZREM', KEYS[9], ARGV[7])
end
return fresh
