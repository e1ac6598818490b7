-- What the collector removed from S3 is forgotten (gc.c).  ARGV: lease
-- token (ignored when "", a dry run forgets nothing), the number of
-- session ids, the ids (their multipart upload aborted), then object
-- keys (deleted).  Only entries marked 0 (taken by the collector) go.
local n = tonumber(ARGV[2])
for i = 3, 2 + n do
    if redis.call('ZSCORE', 'uploads', ARGV[i]) == '0' then
        redis.call('ZREM', 'uploads', ARGV[i])
        redis.call('HDEL', 'uploads:mpu', ARGV[i])
    end
end
for i = 3 + n, #ARGV do
    if redis.call('ZSCORE', 'objects:pending', ARGV[i]) == '0' then
        redis.call('ZREM', 'objects:pending', ARGV[i])
    end
end
return 1
