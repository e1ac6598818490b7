-- flags: no-writes
-- Whether the Image of manifest D must be made, and from which config.
-- KEYS: image:D, repo:R:blobs[, blob:C (C: the config's digest, when the
-- config is read)].
-- ARGV: [C, with blob:C].
-- Returns 1 when the Image exists, 0 when it must be made without
-- config, else {S3 key, size} of the config blob.
local image, blobs, config = KEYS[1], KEYS[2], KEYS[3]
local config_digest = ARGV[1]

if redis.call('HEXISTS', image, 'object') == 1 then
    return 1
end
if not config or redis.call('SISMEMBER', blobs, config_digest) == 0 then
    return 0
end
local b = redis.call('HMGET', config, 'key', 'size')
if not b[1] or not b[2] then return 0 end
return b
