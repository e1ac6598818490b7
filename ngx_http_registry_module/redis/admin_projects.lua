-- flags: no-writes
-- The projects, by name (scripts/registry get projects).
-- KEYS: none (see lib.lua).
-- ARGV: none.
-- Returns {"ok", "NAME\tPUBLIC\tCREATOR" of each project}.
local out = {'ok'}
local projects = redis.call('SMEMBERS', key.projects())
table.sort(projects)
for _, p in ipairs(projects) do
    local h = redis.call('HMGET', key.project(p), 'public', 'creator')
    out[#out + 1] = p .. '\t' .. (h[1] == '1' and 'true' or 'false')
        .. '\t' .. (h[2] or '')
end
return out
