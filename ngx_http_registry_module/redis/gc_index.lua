-- The collector's first phase (gc.c): the index a registry older than
-- the collector did not keep, built once, before any blob is taken.
-- refs:D gets "R@M" for every manifest M of every repository R (the
-- blobs only they name are kept), then every blob already unused
-- becomes a candidate (gc:blobs, from now on).  A call does a few
-- repositories or blobs; gc:index keeps where it is, and "done".
-- KEYS: none (gc:index, repos, repo:R:manifests, image:D, refs:D, blobs,
-- blob:D and its links, gc:blobs).
-- ARGV: lease token ("" for a dry run: it changes nothing), how many
-- repositories, how many blobs.
-- Returns "lost", or 1 once the index is complete, 2 to a dry run before
-- it is (what it lists may differ from what a collection takes), else 0.
local token, repos, blobs = ARGV[1], tonumber(ARGV[2]), ARGV[3]

if not gc_hold(token) then return 'lost' end
local at = redis.call('HMGET', key.gc_index(), 'done', 'repo', 'blob')
if at[1] then return 1 end
if token == '' then return 2 end

if not at[3] then
    local rs = redis.call('ZRANGEBYLEX', key.repos(),
                          at[2] and '(' .. at[2] or '-', '+',
                          'LIMIT', 0, repos)
    for _, r in ipairs(rs) do
        for _, m in ipairs(redis.call('SMEMBERS', key.repo_manifests(r))) do
            for _, d in ipairs(manifest_names(m)) do
                redis.call('SADD', key.refs(d), r .. '@' .. m)
            end
        end
    end
    if #rs == repos then
        redis.call('HSET', key.gc_index(), 'repo', rs[#rs])
        return 0
    end
    at[3] = '0'
end

local scan = redis.call('SSCAN', key.blobs(), at[3], 'COUNT', blobs)
for _, d in ipairs(scan[2]) do
    if not redis.call('ZSCORE', key.gc_blobs(), d) then
        gc_unused(d, redis.call('HGET', key.blob(d), 'unlinked') or '')
    end
end
if scan[1] == '0' then
    redis.call('HSET', key.gc_index(), 'done', gc_now())
    redis.call('HDEL', key.gc_index(), 'repo', 'blob')
    return 1
end
redis.call('HSET', key.gc_index(), 'blob', scan[1])
return 0
