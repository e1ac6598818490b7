-- A batch of Images no repository holds any more (gc.c), unused for the
-- grace: image:D (manifest bytes, Image object) goes; an index leaves
-- its manifests' parents.
-- KEYS: none (gc:images, image:D and its sets, images).
-- ARGV: lease token ("" for a dry run), grace (seconds), how many,
-- offset.
-- Returns "lost", or the entries read, those kept (the next offset: 0),
-- then each digest taken.
local token, grace, count, offset = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local dry = token == ''

if not gc_hold(token) then return 'lost' end
local ds = redis.call('ZRANGEBYSCORE', key.gc_images(), '-inf', gc_now() - grace,
                      'LIMIT', offset, count)
local out = {#ds, 0}
for _, d in ipairs(ds) do
    if redis.call('SCARD', key.image_repos(d)) > 0 then
        if not dry then redis.call('ZREM', key.gc_images(), d) end
    else
        if not dry then
            for _, c in ipairs(manifest_names(d)) do
                redis.call('SREM', key.image_parents(c), d)
            end
            redis.call('DEL', key.image(d), key.image_repos(d),
                       key.image_parents(d))
            redis.call('ZREM', key.images(), d)
            redis.call('ZREM', key.gc_images(), d)
        end
        out[#out + 1] = d
    end
end
return out
