-- DELETE of a manifest by tag (manifests.c).  The tag leaves the image
-- stream too (is_untag): one event.
-- KEYS: none (repo:R:tags, repo:R:tagnames, the stream's keys).
-- ARGV: R, tag, P, N, the log's length.
-- Returns the digest the tag named, or 0 if unknown.
local r, tag, project, image, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

local d = redis.call('HGET', key.repo_tags(r), tag)
if not d then return 0 end
redis.call('HDEL', key.repo_tags(r), tag)
redis.call('ZREM', key.repo_tagnames(r), tag)
is_untag(project, image, tag, maxlen)
return d
