-- A new upload session of repository R, expiring unless written to.
-- KEYS: upload:ID.
-- ARGV: R, the hash state (sha), seconds until it expires.
-- Returns 1.
local session = KEYS[1]
local repo, sha, expires = ARGV[1], ARGV[2], ARGV[3]

redis.call('HSET', session, 'repo', repo, 'offset', '0', 'sha', sha)
redis.call('EXPIRE', session, expires)
upload_touch(session)
return 1
