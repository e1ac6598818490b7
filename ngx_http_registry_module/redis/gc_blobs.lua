-- A batch of the blobs to collect (gc.c).  ARGV: lease token ("" for a
-- dry run, which changes nothing), grace (seconds), how many, offset.
-- Each candidate unused for the grace is checked again: no link, no
-- manifest naming it, no upload session holding a claim that found it;
-- then blob:D goes, and its object key is marked for deletion in
-- objects:pending (score 0) before the caller deletes it from S3, so
-- that the object stays known to Redis until it is gone.  A mount, an
-- upload commit or a manifest PUT that comes after finds no blob:D.
-- Returns "lost" (the lease), or the candidates read, those left in
-- place (pinned: the next offset), then digest, S3 key, size and the
-- repository that last linked it, of each blob taken.
local token, grace, n, off = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local dry = token == ''
if not gc_hold(token) then return 'lost' end
local ds = redis.call('ZRANGEBYSCORE', 'gc:blobs', '-inf', gc_now() - grace,
                      'LIMIT', off, n)
local out = {#ds, 0}
for _, d in ipairs(ds) do
    local b = 'blob:' .. d
    local pinned = false
    for _, s in ipairs(redis.call('SMEMBERS', b .. ':uploads')) do
        if taken(redis.call('HGET', s, 'busy')) then
            pinned = true
        elseif not dry then
            redis.call('SREM', b .. ':uploads', s)
        end
    end
    if redis.call('EXISTS', b) == 0
       or redis.call('SCARD', b .. ':links') > 0
       or redis.call('SCARD', 'refs:' .. d) > 0 then
        -- used again (or gone): no candidate any more
        if not dry then redis.call('ZREM', 'gc:blobs', d) end
    elseif pinned then
        out[2] = out[2] + 1
    else
        local h = redis.call('HMGET', b, 'key', 'size', 'unlinked')
        if not dry then
            redis.call('DEL', b, b .. ':links', b .. ':uploads', 'refs:' .. d)
            redis.call('SREM', 'blobs', d)
            redis.call('ZREM', 'gc:blobs', d)
            if h[1] then redis.call('ZADD', 'objects:pending', 0, h[1]) end
        end
        out[#out + 1] = d
        out[#out + 1] = h[1] or ''
        out[#out + 1] = h[2] or '0'
        out[#out + 1] = h[3] or ''
    end
end
return out
