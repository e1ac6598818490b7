-- flags: no-writes
-- The referrers of subject S in repository R: the manifests of R whose
-- subject is S, by digest.
-- KEYS: repo:R:referrers:S.
-- ARGV: the artifactType filter, "" for none.
-- Returns {digest, type, size, artifactType, annotations} of each.
local referrers = KEYS[1]
local filter = ARGV[1]

local ds = redis.call('SMEMBERS', referrers)
table.sort(ds)
local out = {}
for _, d in ipairs(ds) do
    local m = redis.call('HMGET', key.image(d), 'type', 'size',
                         'artifactType', 'annotations')
    local at = m[3] or ''
    if m[1] and (filter == '' or at == filter) then
        out[#out + 1] = {d, m[1], m[2] or '0', at, m[4] or ''}
    end
end
return out
