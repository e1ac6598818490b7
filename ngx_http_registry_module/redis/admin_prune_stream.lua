-- `scripts/registry prune images` (scripts/lib/prune.sh), step 1: the
-- history entries of stream R to remove, COUNT tags at a time (tags
-- after AFTER, in order).  Per tag, the head (the tag's current image),
-- the newest KEEP entries and every entry created after CUTOFF (RFC
-- 3339, the format of "created") are kept; with CONFIRM "1" the others
-- are removed: the tag's history is written again and its watch event
-- goes out (is_set_tag), the images the stream no longer names leave
-- imagestream:R:images.  A stream an older version wrote whole is split
-- first (read as it is, all at once, without CONFIRM).
-- Returns "more<tab>the last tag" (call again with it as AFTER) or
-- "done", then one row per entry removed (or to remove): "tag<tab>
-- generation<tab>image<tab>created".
-- KEYS: none (the stream's parts, repo:R:tagnames, imagestreams:log).
-- ARGV: P, N, KEEP, CUTOFF, CONFIRM ("1" or "0"), the log's length,
-- AFTER ("" for the first tag), COUNT.
local p, n, keep, cutoff = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local confirm, maxlen, after, count = ARGV[5] == '1', ARGV[6], ARGV[7], tonumber(ARGV[8])
local r = p .. '/' .. n
local sk = key.imagestream(r)
local t = redis.call('TYPE', sk).ok
if t == 'string' and confirm then
    is_split(r)
    t = 'hash'
end
local out, tags = {'done'}, {}
if t == 'string' then
    for _, x in ipairs(cjson.decode(redis.call('GET', sk)).status.tags or {}) do
        tags[#tags + 1] = {x.tag, x.items}
    end
elseif t == 'hash' then
    local names = redis.call('ZRANGE', key.repo_tagnames(r),
                             after == '' and '-' or '(' .. after, '+',
                             'BYLEX', 'LIMIT', 0, count)
    if #names == count then out[1] = 'more\t' .. names[#names] end
    if #names > 0 then
        local texts = redis.call('HMGET', key.imagestream_tags(r), unpack(names))
        for i = 1, #names do
            if texts[i] then
                tags[#tags + 1] = {names[i], cjson.decode(texts[i]).items}
            end
        end
    end
end
for _, x in ipairs(tags) do
    local kept, gone = {}, {}
    for i, e in ipairs(x[2]) do
        if i <= math.max(keep, 1) or e.created > cutoff then
            kept[#kept + 1] = e
        else
            gone[#gone + 1] = e
            out[#out + 1] = x[1] .. '\t' .. string.format('%d', e.generation)
                .. '\t' .. e.image .. '\t' .. e.created
        end
    end
    if confirm and #gone > 0 then
        for _, e in ipairs(gone) do is_unref(r, e.image) end
        is_set_tag(p, r, x[1], kept, maxlen)
    end
end
return out
