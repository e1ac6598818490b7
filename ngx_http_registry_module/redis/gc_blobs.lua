-- A batch of the blobs to collect (gc.c).  Each candidate unused for the
-- grace is checked again: no link, no manifest naming it, no upload
-- session holding a claim that found it (gc_pin); then blob:D goes, and
-- its object key is marked for deletion in objects:pending (score 0)
-- before the caller deletes it from S3, so that the object stays known
-- to Redis until it is gone.  A mount, an upload commit or a manifest
-- PUT that comes after finds no blob:D.
-- KEYS: none (gc:blobs, blob:D and its sets, blobs, objects:pending).
-- ARGV: lease token ("" for a dry run, which changes nothing), grace
-- (seconds), how many, offset.
-- Returns "lost" (the lease), or the candidates read, those left in
-- place (pinned: the next offset), then digest, S3 key, size and the
-- repository that last linked it, of each blob taken.
local token, grace, count, offset = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local dry = token == ''

if not gc_hold(token) then return 'lost' end
local ds = redis.call('ZRANGEBYSCORE', key.gc_blobs(), '-inf', gc_now() - grace,
                      'LIMIT', offset, count)
local out = {#ds, 0}
for _, d in ipairs(ds) do
    local b, pins = key.blob(d), key.blob_uploads(d)
    local pinned = false
    for _, s in ipairs(redis.call('SMEMBERS', pins)) do
        if taken(redis.call('HGET', s, 'busy')) then
            pinned = true
        elseif not dry then
            redis.call('SREM', pins, s)
        end
    end
    if redis.call('EXISTS', b) == 0
       or redis.call('SCARD', key.blob_links(d)) > 0
       or redis.call('SCARD', key.refs(d)) > 0 then
        -- used again (or gone): no candidate any more
        if not dry then redis.call('ZREM', key.gc_blobs(), d) end
    elseif pinned then
        out[2] = out[2] + 1
    else
        local h = redis.call('HMGET', b, 'key', 'size', 'unlinked')
        if not dry then
            redis.call('DEL', b, key.blob_links(d), pins, key.refs(d))
            redis.call('SREM', key.blobs(), d)
            redis.call('ZREM', key.gc_blobs(), d)
            if h[1] then redis.call('ZADD', key.pending(), 0, h[1]) end
        end
        out[#out + 1] = d
        out[#out + 1] = h[1] or ''
        out[#out + 1] = h[2] or '0'
        out[#out + 1] = h[3] or ''
    end
end
return out
