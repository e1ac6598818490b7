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
return role_rows(key.members(project),
                 function(u) return key.roles(project, u) end)
