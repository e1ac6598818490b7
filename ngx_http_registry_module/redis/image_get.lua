-- flags: no-writes
-- GET /apis/image.openshift.io/v1/images/D: the Image (JSON), then the
-- repositories holding D (who may see it), or nil.
-- KEYS: none (image:D, image:D:repos).  ARGV: D.
local d = ARGV[1]
local o = redis.call('HGET', key.image(d), 'object')
if not o then return false end
local out = {o}
for _, r in ipairs(redis.call('SMEMBERS', key.image_repos(d))) do
    out[#out + 1] = r
end
return out
