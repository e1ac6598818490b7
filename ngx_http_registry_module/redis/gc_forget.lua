-- What the collector removed from S3 is forgotten (gc.c): only entries
-- it marked 0 (taken) go.
-- KEYS: none (uploads, uploads:mpu, objects:pending).
-- ARGV: lease token (unused: a lease lost meanwhile takes nothing back),
-- the number of session ids, the ids (their multipart upload aborted),
-- then object keys (deleted).
-- Returns 1.
local n = tonumber(ARGV[2])

for i = 3, 2 + n do
    if redis.call('ZSCORE', key.uploads(), ARGV[i]) == '0' then
        redis.call('ZREM', key.uploads(), ARGV[i])
        redis.call('HDEL', key.uploads_mpu(), ARGV[i])
    end
end
for i = 3 + n, #ARGV do
    if redis.call('ZSCORE', key.pending(), ARGV[i]) == '0' then
        redis.call('ZREM', key.pending(), ARGV[i])
    end
end
return 1
