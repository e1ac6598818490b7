-- PUT.  ARGV: repository, digest, tag or "", body, type, size,
-- artifactType, annotations, subject (each "" when absent), the set the
-- references must be in ("blobs" or "manifests"), the Image object (""
-- when the image has one), project, image, pusher, the repository's
-- reference (host/project/image), now, a uid for a new image stream, the
-- history depth, the log's length; then each referenced digest and the
-- size its descriptor declares.  Returns 1 when stored, the first digest
-- that the repository does not hold, or {digest, size} for a blob whose
-- size is not the one declared (and nothing is changed): clients trust
-- the declared size.  A push by tag moves the image stream in the
-- same step (is_push, imagestreams.c), so the stream's tags and the
-- tags list never disagree.
local r, d, tag, subject = ARGV[1], ARGV[2], ARGV[3], ARGV[9]
local p = 'repo:' .. r .. ':'
for i = 20, #ARGV, 2 do
    if redis.call('SISMEMBER', p .. ARGV[10], ARGV[i]) == 0 then
        return ARGV[i]
    end
end
if ARGV[10] == 'blobs' then
    for i = 20, #ARGV, 2 do
        local size = redis.call('HGET', 'blob:' .. ARGV[i], 'size')
        if size and size ~= ARGV[i + 1] then
            return {ARGV[i], size}
        end
    end
end
local k = 'image:' .. d
redis.call('HSET', k, 'body', ARGV[4], 'type', ARGV[5], 'size', ARGV[6])
local opt = {'artifactType', 'annotations', 'subject'}
for i = 1, 3 do
    if ARGV[6 + i] ~= '' then
        redis.call('HSET', k, opt[i], ARGV[6 + i])
    end
end
redis.call('SADD', p .. 'manifests', d)
if tag ~= '' then
    redis.call('HSET', p .. 'tags', tag, d)
    redis.call('ZADD', p .. 'tagnames', 0, tag)
end
redis.call('ZADD', 'repos', 0, r)
if subject ~= '' then
    redis.call('SADD', p .. 'referrers:' .. subject, d)
end
image_put(r, d, ARGV[11])
manifest_refs(r, d, ARGV, 20)
if tag ~= '' then
    is_push(ARGV[12], ARGV[13], tag, d, ARGV[14], ARGV[15], ARGV[16], ARGV[17], tonumber(ARGV[18]), ARGV[19])
end
return 1
