-- A cluster role of user U bound ("add") or unbound ("remove").
-- KEYS: none (see lib.lua).
-- ARGV: "add" or "remove", the role, U.
-- Returns "ok"; "no user" (add); "not bound" (remove).
local op, role, user = ARGV[1], ARGV[2], ARGV[3]

local roles = key.clusterroles(user)
if op == 'add' then
    if redis.call('SISMEMBER', key.users(), user) == 0 then
        return 'no user'
    end
    redis.call('SADD', roles, role)
    redis.call('SADD', key.clusterusers(), user)
    return 'ok'
end
if redis.call('SREM', roles, role) == 0 then return 'not bound' end
if redis.call('SCARD', roles) == 0 then
    redis.call('SREM', key.clusterusers(), user)
end
return 'ok'
