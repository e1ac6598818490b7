-- Multipart uploads S3 lists under data/ (gc.c) that nothing in Redis
-- accounts for: left by a worker killed, S3 lost, or Redis lost with the
-- record unanswered, between creating one and recording it in its
-- session.  One is left while its session lives (it may be recorded any
-- moment), while its key is pending from within the age (a monolithic
-- push over 5 GiB), or when it is younger than a minute.  The listing's
-- markers are kept (gc:mpus), so that the next collection reads the
-- next page.
-- KEYS: none (gc:mpus, upload:ID, objects:pending).
-- ARGV: lease token ("" for a dry run), age (seconds: as for orphans),
-- the listing's next key and upload id markers ("" when it ended), then
-- key, upload id and initiation time (Unix) of each upload of the page.
-- Returns "lost", or key and upload id of each to abort.
local token, age, next_key, next_id = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]

if not gc_hold(token) then return 'lost' end
local now = gc_now()
if token ~= '' then
    if next_key == '' then
        redis.call('DEL', key.gc_mpus())
    else
        redis.call('HSET', key.gc_mpus(), 'key', next_key, 'id', next_id)
    end
end
local out = {}
for i = 5, #ARGV, 3 do
    local s3key, mpu, t = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    local id = string.match(s3key, '^data/(%x+)$')
    local p = tonumber(redis.call('ZSCORE', key.pending(), s3key) or '0')
    if id and t < now - 60 and redis.call('EXISTS', key.upload(id)) == 0
       and p <= now - age then
        out[#out + 1] = s3key
        out[#out + 1] = mpu
    end
end
return out
