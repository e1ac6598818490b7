-- flags: no-writes
-- Whether the Image must be made.  ARGV: digest, repository, config
-- digest ("" when no config is read).  Returns 1 when the Image exists,
-- 0 when it must be made without config, else {S3 key, size} of the
-- config blob.
if redis.call('HEXISTS', 'image:' .. ARGV[1], 'object') == 1 then
    return 1
end
if ARGV[3] == '' or redis.call('SISMEMBER', 'repo:' .. ARGV[2] .. ':blobs', ARGV[3]) == 0 then
    return 0
end
local b = redis.call('HMGET', 'blob:' .. ARGV[3], 'key', 'size')
if not b[1] or not b[2] then return 0 end
return b
