-- flags: no-writes
-- Before a manifest is stored (quota.c): the project's image-size, and
-- its number of image streams (a push by tag to a repository without
-- one makes a stream).
-- KEYS: none (quota:P, project:P:imagestreams).
-- ARGV: repository, tag ("" for a push by digest), the image's size
-- (config and distinct layers).
-- Returns "", or the message of the limit the push would exceed.
local repo, tag, size = ARGV[1], ARGV[2], tonumber(ARGV[3])

local p, n = string.match(repo, '^([^/]+)/(.+)$')
local q = redis.call('HMGET', key.quota(p), 'imagestreams', 'image-size')
if q[2] and size > tonumber(q[2]) then
    return 'exceeded limit: image-size of project "' .. p .. '": the image is '
           .. size .. ' bytes, limited ' .. q[2]
end
local streams = key.project_imagestreams(p)
if q[1] and tag ~= '' and not redis.call('ZSCORE', streams, n) then
    local used = redis.call('ZCARD', streams)
    if used + 1 > tonumber(q[1]) then
        return 'exceeded quota: openshift.io/imagestreams of project "' .. p
               .. '": requested 1, used ' .. used .. ', limited ' .. q[1]
    end
end
return ''
