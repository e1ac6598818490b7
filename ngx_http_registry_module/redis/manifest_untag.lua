-- DELETE by tag.  ARGV: repository, tag, project, image, the log's
-- length.  Returns the digest the tag named, or 0 if unknown.
local p = 'repo:' .. ARGV[1] .. ':'
local d = redis.call('HGET', p .. 'tags', ARGV[2])
if not d then return 0 end
redis.call('HDEL', p .. 'tags', ARGV[2])
redis.call('ZREM', p .. 'tagnames', ARGV[2])
is_untag(ARGV[3], ARGV[4], ARGV[2], ARGV[5])
return d
