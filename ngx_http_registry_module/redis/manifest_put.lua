-- PUT of a manifest (manifest_put.c): stored with its tag, its Image and
-- its image stream in one step (is_push, imagestreams.c), so that the
-- stream's tags and the tags list never disagree, and the quotas are
-- checked in the same step, so that concurrent pushes cannot both pass.
-- KEYS: none (repo:R:*, image:D, blob:D, refs:D, repos, the stream's
-- keys, quota:P).
-- ARGV: repository, digest, tag or "", body, type, the body's size,
-- artifactType, annotations, subject (each "" when absent), the set the
-- references must be in ("blobs" or "manifests"), the Image object (""
-- when the image has one), project, image, pusher, the repository's
-- reference (host/project/image), now, a uid for a new image stream, the
-- history depth, the log's length, the image's size (0 for an index);
-- then each referenced digest and the size its descriptor declares.
-- Returns 1 when stored.  Else nothing is changed, and it returns the
-- first digest the repository does not hold, {digest, size} for a blob
-- whose size is not the one declared (clients trust the declared size),
-- or a status reply: the message of the quota the push would exceed.
local r, d, tag, body, mtype, length, atype, annotations, subject, set,
      object, project, image, pusher, ref, now, uid, depth, maxlen, size =
    unpack(ARGV, 1, 20)
local first = 21

local holds = set == 'blobs' and key.repo_blobs(r) or key.repo_manifests(r)
for i = first, #ARGV, 2 do
    if redis.call('SISMEMBER', holds, ARGV[i]) == 0 then
        return ARGV[i]
    end
end
if set == 'blobs' then
    for i = first, #ARGV, 2 do
        local stored = redis.call('HGET', key.blob(ARGV[i]), 'size')
        if stored and stored ~= ARGV[i + 1] then
            return {ARGV[i], stored}
        end
    end
end
local denied = quota_image(r, tag, size)
if denied then return redis.status_reply(denied) end

local k = key.image(d)
redis.call('HSET', k, 'body', body, 'type', mtype, 'size', length)
if atype ~= '' then redis.call('HSET', k, 'artifactType', atype) end
if annotations ~= '' then redis.call('HSET', k, 'annotations', annotations) end
if subject ~= '' then redis.call('HSET', k, 'subject', subject) end
redis.call('SADD', key.repo_manifests(r), d)
if tag ~= '' then
    redis.call('HSET', key.repo_tags(r), tag, d)
    redis.call('ZADD', key.repo_tagnames(r), 0, tag)
end
redis.call('ZADD', key.repos(), 0, r)
if subject ~= '' then
    redis.call('SADD', key.repo_referrers(r, subject), d)
end
image_put(r, d, object)
manifest_refs(r, d, ARGV, first)
if tag ~= '' then
    is_push(project, image, tag, d, pusher, ref, now, uid, tonumber(depth), maxlen)
end
return 1
