-- flags: no-writes
local u = redis.call('HMGET', KEYS[1], 'repo', 'offset', 'sha',
                     'mpu')
if not u[1] or u[1] ~= ARGV[1] then return false end
return {u[2], u[3], u[4] or '',
        tostring(redis.call('LLEN', KEYS[2])),
        tostring(redis.call('STRLEN', KEYS[3]))}
