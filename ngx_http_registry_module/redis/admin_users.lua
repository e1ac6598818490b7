-- flags: no-writes
-- The users, by name (scripts/registry get users).
-- KEYS: none (see lib.lua).
-- ARGV: none.
-- Returns {"ok", "NAME\tTOKENS\tCLUSTER ROLES" of each user}.
local out = {'ok'}
local users = redis.call('SMEMBERS', key.users())
table.sort(users)
for _, u in ipairs(users) do
    local roles = redis.call('SMEMBERS', key.clusterroles(u))
    table.sort(roles)
    local r = table.concat(roles, ',')
    if r == '' then r = '<none>' end
    out[#out + 1] = u .. '\t' .. redis.call('SCARD', key.user_tokens(u))
        .. '\t' .. r
end
return out
