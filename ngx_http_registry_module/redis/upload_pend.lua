-- An S3 key recorded before S3 sees a byte of it (a monolithic push; a
-- session's claim does it for sessions): if Redis fails after S3, the
-- object is still known.
-- KEYS: objects:pending.
-- ARGV: S3 key.
-- Returns 1.
local pending = KEYS[1]
local s3key = ARGV[1]

redis.call('ZADD', pending, redis.call('TIME')[1], s3key)
return 1
