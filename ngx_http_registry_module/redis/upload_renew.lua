-- The claim of the request holding token, renewed for seconds.
-- KEYS: upload:ID.
-- ARGV: token, seconds.
-- Returns 1 when renewed, 0 when the claim is not ours any more.
local session = KEYS[1]
local token, seconds = ARGV[1], ARGV[2]

if not upload_ours(session, token) then return 0 end
local now = tonumber(redis.call('TIME')[1])
redis.call('HSET', session, 'busy', token .. ' ' .. (now + tonumber(seconds)))
return 1
