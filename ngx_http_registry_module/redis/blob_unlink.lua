-- DELETE of a blob: repository R forgets blob D (the blob itself stays
-- for the collector: a candidate once nothing links or names it).
-- KEYS: repo:R:blobs, blob:D:links.
-- ARGV: D, R.
-- Returns 1, or 0 when R did not link D.
local blobs, links = KEYS[1], KEYS[2]
local digest, repo = ARGV[1], ARGV[2]

if redis.call('SREM', blobs, digest) == 0 then
    return 0
end
redis.call('SREM', links, repo)
gc_unlinked(repo, digest)
return 1
