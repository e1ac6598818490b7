-- A PATCH too small for a part: its bytes wait in the tail.
-- KEYS: upload:ID, upload:ID:tail.
-- ARGV: the offset the request read, the new offset, sha, the bytes,
-- seconds until the session expires.
-- Returns 1; or upload_guard's answer: -1 no session, 0 moved on,
-- {"busy", seconds left} claimed by another request.
local session, tail = KEYS[1], KEYS[2]
local offset, new_offset, sha, bytes, expires =
    ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

local no = upload_guard(session, offset)
if no then return no end
redis.call('APPEND', tail, bytes)
redis.call('HSET', session, 'offset', new_offset, 'sha', sha)
redis.call('EXPIRE', session, expires)
redis.call('EXPIRE', tail, expires)
return 1
