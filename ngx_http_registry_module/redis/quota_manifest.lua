-- flags: no-writes
-- Before a manifest is stored (quota.c).  ARGV: repository, tag ("" for
-- a push by digest), the image's size (config and distinct layers).
-- Returns "", or the message of the limit the push would exceed: the
-- project's image-size, or its number of image streams (a push by tag
-- to a repository without one makes a stream).
local p, n = string.match(ARGV[1], '^([^/]+)/(.+)$')
local q = redis.call('HMGET', 'quota:' .. p, 'imagestreams', 'image-size')
if q[2] and tonumber(ARGV[3]) > tonumber(q[2]) then
    return 'exceeded limit: image-size of project "' .. p .. '": the image is '
           .. ARGV[3] .. ' bytes, limited ' .. q[2]
end
local streams = 'project:' .. p .. ':imagestreams'
if q[1] and ARGV[2] ~= '' and not redis.call('ZSCORE', streams, n) then
    local used = redis.call('ZCARD', streams)
    if used + 1 > tonumber(q[1]) then
        return 'exceeded quota: openshift.io/imagestreams of project "' .. p
               .. '": requested 1, used ' .. used .. ', limited ' .. q[1]
    end
end
return ''
