-- A batch of upload sessions to end (gc.c): expired ones (no activity
-- for registry_upload_expires), or those idle for longer than gc
-- --uploads-older-than.  A session a request holds (claimed) is left.
-- Its keys go; its index entry stays, marked 0, and its object key is
-- marked for deletion (score 0 in objects:pending), until the caller has
-- aborted its multipart upload and deleted its object (gc_forget): what
-- S3 holds stays known.
-- KEYS: none (uploads, uploads:mpu, upload:ID and its keys,
-- objects:pending).
-- ARGV: lease token ("" for a dry run), age (seconds since the last
-- activity), how many, offset.
-- Returns "lost", or the entries read, those left (the next offset),
-- then id, multipart upload id (or "") and object key (or "") of each
-- session ended.
local token, age, count, offset = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local dry = token == ''

if not gc_hold(token) then return 'lost' end
local ids = redis.call('ZRANGEBYSCORE', key.uploads(), '-inf', gc_now() - age,
                       'LIMIT', offset, count)
local out = {#ids, 0}
for _, id in ipairs(ids) do
    local session = key.upload(id)
    local u = redis.call('HMGET', session, 'busy', 'mpu')
    if taken(u[1]) then
        out[2] = out[2] + 1
    else
        local s3key = 'data/' .. id
        local mpu = redis.call('HGET', key.uploads_mpu(), id) or u[2] or ''
        if not redis.call('ZSCORE', key.pending(), s3key) then s3key = '' end
        if not dry then
            redis.call('DEL', session, key.upload_etags(id), key.upload_tail(id))
            tail_drop(session)
            redis.call('ZADD', key.uploads(), 0, id)
            if s3key ~= '' then redis.call('ZADD', key.pending(), 0, s3key) end
        end
        out[#out + 1] = id
        out[#out + 1] = mpu
        out[#out + 1] = s3key
    end
end
return out
