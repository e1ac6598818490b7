-- The request holding token ends without its commit: the session is free
-- again (if the claim is still ours).
-- KEYS: upload:ID.
-- ARGV: token.
-- Returns 1.
local session = KEYS[1]
local token = ARGV[1]

if upload_ours(session, token) then
    redis.call('HDEL', session, 'busy')
end
return 1
