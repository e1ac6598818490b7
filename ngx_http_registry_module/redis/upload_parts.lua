-- A PATCH's parts are in S3: the session moves on, the claim ends, the
-- tail (sent in the first part) is emptied.
-- KEYS: upload:ID, upload:ID:etags, upload:ID:tail.
-- ARGV: the offset the request read, the new offset, sha, token, seconds
-- until the session expires, multipart id, then "N ETAG" of each part.
-- Returns 1; or upload_guard's answer: -1 no session, 0 moved on or the
-- claim is not ours.
local session, etags, tail = KEYS[1], KEYS[2], KEYS[3]
local offset, new_offset, sha, token, expires, mpu =
    ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local no = upload_guard(session, offset, token)
if no then return no end
for i = 7, #ARGV do redis.call('RPUSH', etags, ARGV[i]) end
redis.call('DEL', tail)
tail_drop(session)
redis.call('HSET', session, 'offset', new_offset, 'sha', sha, 'mpu', mpu)
redis.call('HDEL', session, 'busy')
redis.call('EXPIRE', session, expires)
redis.call('EXPIRE', etags, expires)
upload_touch(session)
return 1
