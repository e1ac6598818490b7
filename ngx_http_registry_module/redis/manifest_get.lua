-- flags: no-writes
-- GET and HEAD of a manifest of repository R, by tag or by digest.
-- KEYS: repo:R:tags, repo:R:manifests.
-- ARGV: the reference, "t" (a tag) or "d" (a digest), the field sent
-- after the type: "body" for GET, "size" for HEAD, which needs no body.
-- Returns {digest, type, body or size}, or nil when R does not hold the
-- manifest.
local tags, manifests = KEYS[1], KEYS[2]
local ref, by, field = ARGV[1], ARGV[2], ARGV[3]

local d = ref
if by == 't' then
    d = redis.call('HGET', tags, ref)
    if not d then return false end
elseif redis.call('SISMEMBER', manifests, d) == 0 then
    return false
end
local m = redis.call('HMGET', key.image(d), 'type', field)
if not m[1] or not m[2] then return false end
return {d, m[1], m[2]}
