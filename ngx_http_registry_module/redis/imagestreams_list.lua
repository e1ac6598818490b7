-- flags: no-writes
-- The streams of a project: the current resourceVersion, then each
-- whole ImageStream (JSON), by name.  A watch without a resourceVersion
-- starts with it too (watch.c).
-- KEYS: none (project:P:imagestreams, each stream's parts).  ARGV: P.
local p = ARGV[1]
local out = {redis.call('GET', key.imagestreams_rv()) or '0'}
for _, n in ipairs(redis.call('ZRANGE', key.project_imagestreams(p), 0, -1)) do
    local s = is_whole(p .. '/' .. n)
    if s then out[#out + 1] = s end
end
return out
