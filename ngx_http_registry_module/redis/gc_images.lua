-- A batch of Images no repository holds any more (gc.c), unused for the
-- grace: image:D (manifest bytes, Image object) goes.  ARGV: lease
-- token ("" for a dry run), grace (seconds), how many, offset.  Returns
-- "lost", or the entries read, those kept (the next offset), then each
-- digest taken.
local token, grace, n, off = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local dry = token == ''
if not gc_hold(token) then return 'lost' end
local ds = redis.call('ZRANGEBYSCORE', 'gc:images', '-inf', gc_now() - grace,
                      'LIMIT', off, n)
local out = {#ds, 0}
for _, d in ipairs(ds) do
    if redis.call('SCARD', 'image:' .. d .. ':repos') > 0 then
        if not dry then redis.call('ZREM', 'gc:images', d) end
    else
        if not dry then
            redis.call('DEL', 'image:' .. d, 'image:' .. d .. ':repos')
            redis.call('ZREM', 'images', d)
            redis.call('ZREM', 'gc:images', d)
        end
        out[#out + 1] = d
    end
end
return out
