-- A PATCH too small for a part: its bytes wait in the tail, if the tails
-- of all sessions stay within registry_upload_tails.
-- KEYS: upload:ID, upload:ID:tail.
-- ARGV: the offset the request read, the new offset, sha, the bytes,
-- seconds until the session expires, the bound of all tails (bytes, 0:
-- none).
-- Returns 1; "full" over the bound; or upload_guard's answer: -1 no
-- session, 0 moved on, {"busy", seconds left} claimed by another request.
local session, tail = KEYS[1], KEYS[2]
local offset, new_offset, sha, bytes, expires, tails =
    ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local no = upload_guard(session, offset)
if no then return no end
if not tail_add(session, #bytes, tonumber(tails or '0')) then return 'full' end
redis.call('APPEND', tail, bytes)
redis.call('HSET', session, 'offset', new_offset, 'sha', sha)
redis.call('EXPIRE', session, expires)
redis.call('EXPIRE', tail, expires)
upload_touch(session)
return 1
