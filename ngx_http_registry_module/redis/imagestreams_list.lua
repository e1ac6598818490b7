-- flags: no-writes
-- The streams of a project.  ARGV: project.  Returns the current
-- resourceVersion, then each ImageStream (JSON), by name.  A watch
-- without a resourceVersion starts with it too (watch.c).
local out = {redis.call('GET', 'imagestreams:rv') or '0'}
for _, n in ipairs(redis.call('ZRANGE', 'project:' .. ARGV[1] .. ':imagestreams', 0, -1)) do
    local s = redis.call('GET', 'imagestream:' .. ARGV[1] .. '/' .. n)
    if s then out[#out + 1] = s end
end
return out
