-- flags: no-writes
--  ARGV: repository, tag.  Returns {ImageStream, digest, Image or ""}.
local s = redis.call('GET', 'imagestream:' .. ARGV[1])
if not s then return false end
local d = redis.call('HGET', 'repo:' .. ARGV[1] .. ':tags', ARGV[2])
if not d then return false end
return {s, d, redis.call('HGET', 'image:' .. d, 'object') or ''}
