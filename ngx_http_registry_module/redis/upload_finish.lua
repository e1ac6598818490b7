-- The blob becomes visible: the end of an upload (the final PUT, or a
-- monolithic push).  Blob D is made if new, and linked in repository R;
-- the session goes.  The S3 key stops being pending when it is the
-- blob's, or when nothing was stored (a duplicate stays pending until
-- deleted).
-- KEYS: blob:D, repo:R:blobs, blob:D:links, blobs, repos, upload:ID,
-- upload:ID:etags, upload:ID:tail, objects:pending.
-- ARGV: D, R, size, the S3 key stored or "" (nothing stored: the blob
-- existed), now (unix time), token or "" (monolithic), the S3 key.
-- Returns 1 when our object became the blob's, 0 when the blob existed
-- (ours is a duplicate), -1 when it vanished (nothing stored: collected
-- since the caller found it), -2 when the session is no longer ours
-- (cancelled meanwhile) or our key was taken by the collector
-- (gc_orphans), or the message of the storage quota of R's project the
-- blob would exceed (the session goes).
local blob, blobs, links, all_blobs, repos, session, etags, tail, pending =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7],
    KEYS[8], KEYS[9]
local digest, repo, size, stored, now, token, s3key =
    ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]

if token ~= '' and not upload_ours(session, token) then
    return -2
end
if stored ~= '' and gc_taken(s3key) then
    return -2
end
local over = quota_storage(repo, digest, size)
if over then
    redis.call('DEL', session, etags, tail)
    tail_drop(session)
    upload_done(session)
    return over
end
local fresh = 0
if redis.call('EXISTS', blob) == 0 then
    if stored == '' then return -1 end
    redis.call('HSET', blob, 'size', size, 'key', stored, 'created', now)
    redis.call('SADD', all_blobs, digest)
    fresh = 1
end
redis.call('SADD', blobs, digest)
gc_linked(repo, digest, redis.call('SADD', links, repo))
redis.call('ZADD', repos, 0, repo)
redis.call('DEL', session, etags, tail)
tail_drop(session)
redis.call('SREM', key.blob_uploads(digest), session)
upload_done(session)
if fresh == 1 or stored == '' then
    redis.call('ZREM', pending, s3key)
end
return fresh
