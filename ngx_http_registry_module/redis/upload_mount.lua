-- A cross-repository mount: blob D of repository F linked in R too, if
-- F has it.
-- KEYS: repo:F:blobs, blob:D, repo:R:blobs, blob:D:links, repos.
-- ARGV: D, R.
-- Returns 1 when mounted, 0 when F has no blob D (or R's project has
-- no room for it: quota.c).
local from_blobs, blob, blobs, links, repos =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local digest, repo = ARGV[1], ARGV[2]

if redis.call('SISMEMBER', from_blobs, digest) == 0
   or redis.call('EXISTS', blob) == 0 then
    return 0
end
if quota_storage(repo, digest, redis.call('HGET', blob, 'size')) then
    return 0
end
redis.call('SADD', blobs, digest)
gc_linked(repo, digest, redis.call('SADD', links, repo))
redis.call('ZADD', repos, 0, repo)
return 1
