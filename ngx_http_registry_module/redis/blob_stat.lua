-- flags: no-writes
-- GET and HEAD of a blob: whether repository R links blob D, and where
-- it is.
-- KEYS: repo:R:blobs, blob:D.
-- ARGV: D.
-- Returns {size, S3 key}, or nil when R does not link D.
local blobs, blob = KEYS[1], KEYS[2]
local digest = ARGV[1]

if redis.call('SISMEMBER', blobs, digest) == 0 then
    return false
end
return redis.call('HMGET', blob, 'size', 'key')
