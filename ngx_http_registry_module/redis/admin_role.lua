-- A role of user U in project P bound ("add") or unbound ("remove").
-- KEYS: none (see lib.lua).
-- ARGV: "add" or "remove", the role, U, P.
-- Returns "ok"; "no project"; "no user" (add); "not bound" (remove).
local op, role, user, project = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if redis.call('SISMEMBER', key.projects(), project) == 0 then
    return 'no project'
end
local roles = key.roles(project, user)
if op == 'add' then
    if redis.call('SISMEMBER', key.users(), user) == 0 then
        return 'no user'
    end
    redis.call('SADD', roles, role)
    redis.call('SADD', key.members(project), user)
    return 'ok'
end
if redis.call('SREM', roles, role) == 0 then return 'not bound' end
if redis.call('SCARD', roles) == 0 then
    redis.call('SREM', key.members(project), user)
end
return 'ok'
