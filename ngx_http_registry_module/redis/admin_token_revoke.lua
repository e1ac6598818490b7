-- One token revoked, by its hash.
-- KEYS: none (see lib.lua).
-- ARGV: H (the token's hex SHA-256).
-- Returns "ok", or "unknown" (no such token).
local hash = ARGV[1]

local user = redis.call('HGET', key.token(hash), 'user')
if not user then return 'unknown' end
redis.call('DEL', key.token(hash))
redis.call('SREM', key.user_tokens(user), hash)
return 'ok'
