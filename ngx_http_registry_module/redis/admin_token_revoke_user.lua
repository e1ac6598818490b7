-- Every token of user U revoked.
-- KEYS: none (see lib.lua).
-- ARGV: U.
-- Returns {"ok", how many tokens were revoked}.
local user = ARGV[1]

local n = 0
for _, h in ipairs(redis.call('SMEMBERS', key.user_tokens(user))) do
    n = n + redis.call('DEL', key.token(h))
end
redis.call('DEL', key.user_tokens(user))
return {'ok', tostring(n)}
