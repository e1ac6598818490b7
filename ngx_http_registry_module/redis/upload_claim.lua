-- The session becomes the request's (token) for seconds, until it
-- commits, releases or renews the claim; its S3 key is recorded as
-- pending first, since parts may follow.  A PUT learns on the way
-- whether the blob exists.
-- KEYS: upload:ID, upload:ID:etags, objects:pending[, blob:D (a PUT)].
-- ARGV: the offset the request read, token, seconds, S3 key.
-- Returns {committed parts, 1 when blob:D exists else 0}; or
-- upload_guard's answer: -1 no session, 0 moved on, {"busy", seconds
-- left} claimed by another request.
local session, etags, pending, blob = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local offset, token, seconds, s3key = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local no = upload_guard(session, offset)
if no then return no end
local now = tonumber(redis.call('TIME')[1])
redis.call('ZADD', pending, now, s3key)
redis.call('HSET', session, 'busy', token .. ' ' .. (now + tonumber(seconds)))
local exists = 0
if blob then exists = redis.call('EXISTS', blob) end
if exists == 1 then gc_pin(blob, session) end
return {redis.call('LLEN', etags), exists}
