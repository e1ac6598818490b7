-- User U goes, with its tokens and its role bindings.
-- KEYS: none (see lib.lua).
-- ARGV: U.
-- Returns "ok", or "unknown" (no user U).
local user = ARGV[1]

if redis.call('SREM', key.users(), user) == 0 then return 'unknown' end
for _, h in ipairs(redis.call('SMEMBERS', key.user_tokens(user))) do
    redis.call('DEL', key.token(h))
end
for _, p in ipairs(redis.call('SMEMBERS', key.projects())) do
    redis.call('DEL', key.roles(p, user))
    redis.call('SREM', key.members(p), user)
end
redis.call('DEL', key.user(user), key.user_tokens(user),
           key.clusterroles(user))
redis.call('SREM', key.clusterusers(), user)
return 'ok'
