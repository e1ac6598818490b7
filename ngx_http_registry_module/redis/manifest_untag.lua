-- DELETE by tag.  Returns the digest the tag named, or 0 if unknown.
-- The tag leaves the image stream too (is_untag): one event.
-- KEYS: none (repo:R:tags, repo:R:tagnames, the stream's parts).
-- ARGV: R, tag, P, N, the log's length.
local r, tag, project, image, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local p = 'repo:' .. r .. ':'
local d = redis.call('HGET', p .. 'tags', tag)
if not d then return 0 end
redis.call('HDEL', p .. 'tags', tag)
redis.call('ZREM', p .. 'tagnames', tag)
is_untag(project, image, tag, maxlen)
return d
