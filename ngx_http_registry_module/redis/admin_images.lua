-- flags: no-writes
-- `scripts/registry get images`: "ok", then one row per Image, "D<tab>
-- its dockerImageReference".
-- KEYS: none (images, image:D).  ARGV: none.
local out = {'ok'}
for _, d in ipairs(redis.call('ZRANGE', key.images(), 0, -1)) do
    local o = redis.call('HGET', key.image(d), 'object')
    if o then
        out[#out + 1] = d .. '\t' .. cjson.decode(o).dockerImageReference
    end
end
return out
