-- Project P made public or private.
-- KEYS: none (see lib.lua).
-- ARGV: P, public ("1" or "0").
-- Returns "ok", or "unknown" (no project P).
local project, public = ARGV[1], ARGV[2]

if redis.call('SISMEMBER', key.projects(), project) == 0 then
    return 'unknown'
end
redis.call('HSET', key.project(project), 'public', public)
return 'ok'
