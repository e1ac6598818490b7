-- A new token of user U, made with it when new is "1" (scripts/registry
-- user add), else for an existing user (token add).  Only the token's
-- SHA-256 is stored.
-- KEYS: none (see lib.lua).
-- ARGV: U, H (the token's hex SHA-256), new ("1" or "0").
-- Returns "ok"; "exists" (new, but U exists); "unknown" (no user U).
local user, hash, new = ARGV[1], ARGV[2], ARGV[3]

local exists = redis.call('SISMEMBER', key.users(), user) == 1
if new == '1' and exists then return 'exists' end
if new ~= '1' and not exists then return 'unknown' end
local now = redis.call('TIME')[1]
if new == '1' then
    redis.call('SADD', key.users(), user)
    redis.call('HSET', key.user(user), 'created', now)
end
redis.call('HSET', key.token(hash), 'user', user, 'sha', hash, 'created', now)
redis.call('SADD', key.user_tokens(user), hash)
return 'ok'
