-- `scripts/registry quota set`: a project's limits ("" leaves one as it
-- is, "none" removes it); then its storage is counted again from its
-- repositories, each blob once, so that a quota set on older data
-- starts right.
-- KEYS: none (quota:P, project:P:blobs, project:P:storage).
-- ARGV: project, storage (bytes), imagestreams (a count), image-size
-- (bytes).
-- Returns {"ok"}.
local project = ARGV[1]
local fields = {'storage', 'imagestreams', 'image-size'}

for i = 1, 3 do
    if ARGV[i + 1] == 'none' then
        redis.call('HDEL', key.quota(project), fields[i])
    elseif ARGV[i + 1] ~= '' then
        redis.call('HSET', key.quota(project), fields[i], ARGV[i + 1])
    end
end
local count, used = {}, 0
for _, r in ipairs(redis.call('ZRANGEBYLEX', key.repos(), '[' .. project .. '/',
                              '(' .. project .. '0')) do
    for _, d in ipairs(redis.call('SMEMBERS', key.repo_blobs(r))) do
        count[d] = (count[d] or 0) + 1
    end
end
redis.call('DEL', key.project_blobs(project))
for d, n in pairs(count) do
    redis.call('HSET', key.project_blobs(project), d, n)
    used = used + tonumber(redis.call('HGET', key.blob(d), 'size') or '0')
end
redis.call('SET', key.project_storage(project), used)
return {'ok'}
