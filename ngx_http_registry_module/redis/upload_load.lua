-- flags: no-writes
-- A session's state, if it is repository R's.
-- KEYS: upload:ID, upload:ID:etags, upload:ID:tail.
-- ARGV: R.
-- Returns {offset, sha, multipart id or "", committed parts, tail
-- length}, or nil when there is no such session in R.
local session, etags, tail = KEYS[1], KEYS[2], KEYS[3]
local repo = ARGV[1]

local u = redis.call('HMGET', session, 'repo', 'offset', 'sha', 'mpu')
if not u[1] or u[1] ~= repo then return false end
return {u[2], u[3], u[4] or '',
        tostring(redis.call('LLEN', etags)),
        tostring(redis.call('STRLEN', tail))}
