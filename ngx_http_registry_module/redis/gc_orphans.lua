-- A batch of orphans (gc.c): entries of objects:pending whose upload
-- session is gone and that are older than the age given (a push that
-- failed or crashed between its S3 write and its commit), and those the
-- collector marked for deletion (score 0).  Each is marked 0: an upload
-- commit that comes after finds its key taken and fails cleanly
-- (upload_finish).
-- KEYS: none (objects:pending, upload:ID).
-- ARGV: lease token ("" for a dry run), age (seconds: the grace, and at
-- least registry_upload_expires, which a monolithic push in flight may
-- take), how many, offset.
-- Returns "lost", or the entries read, those left (the next offset),
-- then each object key to delete.
local token, age, count, offset = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local dry = token == ''

if not gc_hold(token) then return 'lost' end
local e = redis.call('ZRANGEBYSCORE', key.pending(), '-inf', gc_now() - age,
                     'WITHSCORES', 'LIMIT', offset, count)
local out = {#e / 2, 0}
for i = 1, #e, 2 do
    local s3key, live = e[i], tonumber(e[i + 1]) > 0
    local id = string.match(s3key, '^data/(%x+)$')
    if live and id and redis.call('EXISTS', key.upload(id)) == 1 then
        out[2] = out[2] + 1
    else
        if live and not dry then
            redis.call('ZADD', key.pending(), 0, s3key)
        end
        out[#out + 1] = s3key
    end
end
return out
