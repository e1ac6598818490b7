-- DELETE of a session, or the end of one whose digest was wrong.  Its
-- index entry stays until the collector has aborted its multipart upload
-- again (gc_uploads): the caller's abort may have failed.
-- KEYS: upload:ID, upload:ID:etags, upload:ID:tail.
-- ARGV: none.
-- Returns 1.
local session, etags, tail = KEYS[1], KEYS[2], KEYS[3]

redis.call('DEL', session, etags, tail)
tail_drop(session)
return 1
