-- flags: no-writes
-- The role bindings of project P (scripts/registry get rolebindings).
-- KEYS: none (see lib.lua).
-- ARGV: P.
-- Returns {"ok", "ROLE\tUSER" of each binding, sorted}, or "unknown"
-- (no project P).
local project = ARGV[1]

if redis.call('SISMEMBER', key.projects(), project) == 0 then
    return 'unknown'
end
local out = {}
for _, u in ipairs(redis.call('SMEMBERS', key.members(project))) do
    for _, r in ipairs(redis.call('SMEMBERS', key.roles(project, u))) do
        out[#out + 1] = r .. '\t' .. u
    end
end
table.sort(out)
table.insert(out, 1, 'ok')
return out
