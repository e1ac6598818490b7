-- Project P goes, with its role bindings (not its images).
-- KEYS: none (see lib.lua).
-- ARGV: P.
-- Returns "ok", or "unknown" (no project P).
local project = ARGV[1]

if redis.call('SREM', key.projects(), project) == 0 then return 'unknown' end
for _, u in ipairs(redis.call('SMEMBERS', key.members(project))) do
    redis.call('DEL', key.roles(project, u))
end
redis.call('DEL', key.members(project), key.project(project))
return 'ok'
