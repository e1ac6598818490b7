-- DELETE of a session, or the end of one whose digest was wrong.  KEYS:
-- upload:ID, etags, tail.  Its index entry stays until the collector
-- has aborted its multipart upload again (gc_uploads.lua): the caller's
-- abort may have failed.
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
tail_drop(KEYS[1])
return 1
