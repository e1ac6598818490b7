-- DELETE by digest.  ARGV: repository, digest, project, image, the log's
-- length.  The manifest leaves the repository with every tag pointing
-- to it and its entry in its subject's referrers, and the image stream
-- forgets it (is_forget); image:D stays for other repositories (and the
-- collector).  Returns 1, or 0 when the repository does not hold it.
local p, d = 'repo:' .. ARGV[1] .. ':', ARGV[2]
if redis.call('SREM', p .. 'manifests', d) == 0 then return 0 end
local tags = redis.call('HGETALL', p .. 'tags')
for i = 1, #tags, 2 do
    if tags[i + 1] == d then
        redis.call('HDEL', p .. 'tags', tags[i])
        redis.call('ZREM', p .. 'tagnames', tags[i])
    end
end
local s = redis.call('HGET', 'image:' .. d, 'subject')
if s then redis.call('SREM', p .. 'referrers:' .. s, d) end
redis.call('SREM', 'image:' .. d .. ':repos', ARGV[1])
is_forget(ARGV[3], ARGV[4], d, redis.call('SCARD', p .. 'manifests') == 0, ARGV[5])
manifest_unref(ARGV[1], d)
return 1
