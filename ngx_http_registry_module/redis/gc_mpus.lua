-- Multipart uploads S3 lists under data/ (gc.c) that nothing in Redis
-- accounts for: left by a worker killed, or S3 lost, between creating
-- one and recording it in its session.  ARGV: lease token ("" for a
-- dry run), age (seconds: as for orphans), the listing's next key and
-- upload id markers ("" when it ended), then key, upload id and
-- initiation time (Unix) of each upload of the page.  One is left while
-- its session lives (it may be recorded any moment), or while its key is
-- pending from within the age (a monolithic push over 5 GiB), or when
-- it is younger than a minute.  The markers are kept
-- (gc:mpus), so that the next collection reads the next page.  Returns
-- "lost", or key and upload id of each to abort.
local token, grace = ARGV[1], tonumber(ARGV[2])
if not gc_hold(token) then return 'lost' end
local now = gc_now()
if token ~= '' then
    if ARGV[3] == '' then
        redis.call('DEL', 'gc:mpus')
    else
        redis.call('HSET', 'gc:mpus', 'key', ARGV[3], 'id', ARGV[4])
    end
end
local out = {}
for i = 5, #ARGV, 3 do
    local key, id, t = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    local s = string.match(key, '^data/(%x+)$')
    local p = tonumber(redis.call('ZSCORE', 'objects:pending', key) or '0')
    if s and t < now - 60
       and redis.call('EXISTS', 'upload:' .. s) == 0
       and p <= now - grace then
        out[#out + 1] = key
        out[#out + 1] = id
    end
end
return out
