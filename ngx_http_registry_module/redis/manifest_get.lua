-- flags: no-writes
-- GET and HEAD.  ARGV: repository, reference, "t" (by tag) or "d" (by
-- digest), the field sent after the type: "body" for GET, "size" for
-- HEAD, which needs no body.  Returns {digest, type, body or size}, or
-- nil when the repository does not hold the manifest.
local d = ARGV[2]
if ARGV[3] == 't' then
    d = redis.call('HGET', 'repo:' .. ARGV[1] .. ':tags', d)
    if not d then return false end
elseif redis.call('SISMEMBER', 'repo:' .. ARGV[1] .. ':manifests', d) == 0 then
    return false
end
local m = redis.call('HMGET', 'image:' .. d, 'type', ARGV[4])
if not m[1] or not m[2] then return false end
return {d, m[1], m[2]}
