-- flags: no-writes
-- Referrers.  ARGV: repository, subject digest, artifactType filter or
-- "".  Returns {digest, type, size, artifactType, annotations} for each
-- manifest of the repository whose subject is the digest, by digest.
local p = 'repo:' .. ARGV[1] .. ':'
local ds = redis.call('SMEMBERS', p .. 'referrers:' .. ARGV[2])
table.sort(ds)
local out = {}
for _, d in ipairs(ds) do
    local m = redis.call('HMGET', 'image:' .. d, 'type', 'size',
                         'artifactType', 'annotations')
    local at = m[3] or ''
    if m[1] and (ARGV[3] == '' or at == ARGV[3]) then
        out[#out + 1] = {d, m[1], m[2] or '0', at, m[4] or ''}
    end
end
return out
