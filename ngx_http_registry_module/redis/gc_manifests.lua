-- gc --untagged (gc.c): the manifests of a few repositories that nothing
-- keeps.  Kept are the manifests a tag names, those an image stream's
-- history holds (pruning decides about them), those pushed within the
-- grace, and, from each kept one: the manifests an index lists, its
-- referrers, the subject of a referrer.  Any other manifest leaves its
-- repository as by a DELETE (image stream included); then the blobs of
-- the repository that no kept manifest names, linked before the grace,
-- are unlinked and become candidates at once: the layers follow in the
-- same collection (those of manifests deleted by clients too).
-- KEYS: none (repos, each repository's keys, image:D, the streams').
-- ARGV: lease token ("" for a dry run), grace (seconds), the watch log's
-- length, the last repository done ("" to start), how many
-- repositories.
-- Returns "lost", or the last repository read ("" when there are no
-- more), then repository and digest of each manifest taken.
local token, grace, maxlen, after, count =
    ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local dry = token == ''

if not gc_hold(token) then return 'lost' end
local now = gc_now()
local repos = redis.call('ZRANGEBYLEX', key.repos(),
                         after == '' and '-' or '(' .. after, '+',
                         'LIMIT', 0, count)
local out = {#repos == count and repos[#repos] or ''}

-- as manifest_delete, for a manifest without tags
local function remove(r, p, n, m, left)
    redis.call('SREM', key.repo_manifests(r), m)
    local s = redis.call('HGET', key.image(m), 'subject')
    if s then redis.call('SREM', key.repo_referrers(r, s), m) end
    redis.call('SREM', key.image_repos(m), r)
    is_forget(p, n, m, left == 0, maxlen)
    manifest_unref(r, m, now - grace)
end

for _, r in ipairs(repos) do
    local p, n = string.match(r, '^([^/]+)/(.+)$')
    local ms = redis.call('SMEMBERS', key.repo_manifests(r))
    local here, kept, todo = {}, {}, {}
    for _, m in ipairs(ms) do
        here[m] = true
        if tonumber(redis.call('HGET', key.image(m), 'pushed') or '0') > now - grace then
            todo[#todo + 1] = m
        end
    end
    for _, m in ipairs(redis.call('HVALS', key.repo_tags(r))) do
        todo[#todo + 1] = m
    end
    for _, m in ipairs(is_history(r)) do todo[#todo + 1] = m end
    local left = #ms
    while #todo > 0 do
        local m = table.remove(todo)
        if here[m] and not kept[m] then
            kept[m] = true
            for _, c in ipairs(manifest_names(m)) do todo[#todo + 1] = c end
            for _, c in ipairs(redis.call('SMEMBERS', key.repo_referrers(r, m))) do
                todo[#todo + 1] = c
            end
            todo[#todo + 1] = redis.call('HGET', key.image(m), 'subject') or ''
        end
    end
    for _, m in ipairs(ms) do
        if not kept[m] then
            left = left - 1
            if not dry then remove(r, p, n, m, left) end
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
    for _, d in ipairs(dry and {} or redis.call('SMEMBERS', key.repo_blobs(r))) do
        if not named[d]
           and tonumber(redis.call('ZSCORE', key.repo_linked(r), d) or '0') <= now - grace then
            redis.call('SREM', key.repo_blobs(r), d)
            redis.call('SREM', key.blob_links(d), r)
            gc_unlinked(r, d, now - grace)
        end
    end
end
return out
