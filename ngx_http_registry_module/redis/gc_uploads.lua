-- A batch of upload sessions to end (gc.c): expired ones (no activity
-- for registry_upload_expires), or those idle for longer than gc
-- --uploads-older-than.  ARGV: lease token ("" for a dry run), age
-- (seconds since the last activity), how many, offset.  A session a
-- request holds (claimed) is left.  Its keys go; its index entry stays,
-- marked 0, and its object key is marked for deletion (score 0 in
-- objects:pending), until the caller has aborted its multipart upload
-- and deleted its object (gc_forget): what S3 holds stays known.
-- Returns "lost", or the entries read, those left (the next offset),
-- then id, multipart upload id (or "") and object key (or "") of each
-- session ended.
local token, age, n, off = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local dry = token == ''
if not gc_hold(token) then return 'lost' end
local ids = redis.call('ZRANGEBYSCORE', 'uploads', '-inf', gc_now() - age,
                       'LIMIT', off, n)
local out = {#ids, 0}
for _, id in ipairs(ids) do
    local s = 'upload:' .. id
    local u = redis.call('HMGET', s, 'busy', 'mpu')
    if taken(u[1]) then
        out[2] = out[2] + 1
    else
        local key = 'data/' .. id
        local mpu = redis.call('HGET', 'uploads:mpu', id) or u[2] or ''
        if not redis.call('ZSCORE', 'objects:pending', key) then key = '' end
        if not dry then
            redis.call('DEL', s, s .. ':etags', s .. ':tail')
            tail_drop(s)
            redis.call('ZADD', 'uploads', 0, id)
            if key ~= '' then redis.call('ZADD', 'objects:pending', 0, key) end
        end
        out[#out + 1] = id
        out[#out + 1] = mpu
        out[#out + 1] = key
    end
end
return out
