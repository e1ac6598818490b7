-- DELETE of a manifest by digest (manifests.c).  The manifest leaves the
-- repository with every tag pointing to it and its entry in its
-- subject's referrers, and the image stream forgets it (is_forget);
-- image:D stays for other repositories (and the collector).
-- KEYS: none (repo:R:*, image:D and its repos, the stream's keys, refs:D).
-- ARGV: repository, digest, project, image, the log's length.
-- Returns 1, or 0 when the repository does not hold it.
local r, d, project, image, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

if redis.call('SREM', key.repo_manifests(r), d) == 0 then return 0 end
local tags = redis.call('HGETALL', key.repo_tags(r))
for i = 1, #tags, 2 do
    if tags[i + 1] == d then
        redis.call('HDEL', key.repo_tags(r), tags[i])
        redis.call('ZREM', key.repo_tagnames(r), tags[i])
    end
end
local s = redis.call('HGET', key.image(d), 'subject')
if s then redis.call('SREM', key.repo_referrers(r, s), d) end
redis.call('SREM', key.image_repos(d), r)
is_forget(project, image, d, redis.call('SCARD', key.repo_manifests(r)) == 0, maxlen)
manifest_unref(r, d)
return 1
