-- flags: no-writes
--  ARGV: digest.  Returns the Image, then the repositories holding it.
local o = redis.call('HGET', 'image:' .. ARGV[1], 'object')
if not o then return false end
local out = {o}
for _, r in ipairs(redis.call('SMEMBERS', 'image:' .. ARGV[1] .. ':repos')) do
    out[#out + 1] = r
end
return out
