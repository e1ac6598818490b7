-- gc --untagged (gc.c): the manifests of a few repositories that nothing
-- keeps.  ARGV: lease token ("" for a dry run), grace (seconds), the
-- watch log's length, the last repository done ("" to start), how many
-- repositories.  Kept are the manifests a tag names, those an image
-- stream's history holds (pruning decides about them), those pushed
-- within the grace, and, from each kept one: the manifests an index
-- lists, its referrers, the subject of a referrer.  Any other manifest
-- leaves its repository as by a DELETE (image stream included); then
-- the blobs of the repository that no kept manifest names, linked before
-- the grace, are unlinked and become candidates at once: the layers
-- follow in the same collection (those of manifests deleted by clients
-- too).  Returns "lost", or the last repository read
-- ("" when there are no more), then repository and digest of each
-- manifest taken.
local token, grace, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local dry = token == ''
if not gc_hold(token) then return 'lost' end
local now = gc_now()
local min = ARGV[4] == '' and '-' or '(' .. ARGV[4]
local repos = redis.call('ZRANGEBYLEX', 'repos', min, '+', 'LIMIT', 0, ARGV[5])
local out = {#repos == tonumber(ARGV[5]) and repos[#repos] or ''}

local function remove(r, p, n, m)
    local k = 'repo:' .. r .. ':'
    redis.call('SREM', k .. 'manifests', m)
    local s = redis.call('HGET', 'image:' .. m, 'subject')
    if s then redis.call('SREM', k .. 'referrers:' .. s, m) end
    redis.call('SREM', 'image:' .. m .. ':repos', r)
    is_forget(p, n, m, redis.call('SCARD', k .. 'manifests') == 0, maxlen)
    manifest_unref(r, m, now - grace)
end

for _, r in ipairs(repos) do
    local p, n = string.match(r, '^([^/]+)/(.+)$')
    local k = 'repo:' .. r .. ':'
    local ms = redis.call('SMEMBERS', k .. 'manifests')
    local here, kept, todo = {}, {}, {}
    for _, m in ipairs(ms) do
        here[m] = true
        if tonumber(redis.call('HGET', 'image:' .. m, 'pushed') or '0') > now - grace then
            todo[#todo + 1] = m
        end
    end
    local tags = redis.call('HVALS', k .. 'tags')
    for _, m in ipairs(tags) do todo[#todo + 1] = m end
    for _, m in ipairs(is_history(p, n)) do todo[#todo + 1] = m end
    while #todo > 0 do
        local m = table.remove(todo)
        if here[m] and not kept[m] then
            kept[m] = true
            for _, c in ipairs(manifest_names(m)) do todo[#todo + 1] = c end
            for _, c in ipairs(redis.call('SMEMBERS', k .. 'referrers:' .. m)) do
                todo[#todo + 1] = c
            end
            todo[#todo + 1] = redis.call('HGET', 'image:' .. m, 'subject') or ''
        end
    end
    for _, m in ipairs(ms) do
        if not kept[m] then
            if not dry then remove(r, p, n, m) end
            out[#out + 1] = r
            out[#out + 1] = m
        end
    end
    -- the blobs no kept manifest names, linked before the grace, leave
    -- the repository: candidates at once
    local named = {}
    for m in pairs(kept) do
        for _, d in ipairs(manifest_names(m)) do named[d] = true end
    end
    for _, d in ipairs(redis.call('SMEMBERS', k .. 'blobs')) do
        if not named[d] and not dry
           and tonumber(redis.call('ZSCORE', k .. 'linked', d) or '0') <= now - grace then
            redis.call('SREM', k .. 'blobs', d)
            redis.call('SREM', 'blob:' .. d .. ':links', r)
            gc_unlinked(r, d, now - grace)
        end
    end
end
return out
