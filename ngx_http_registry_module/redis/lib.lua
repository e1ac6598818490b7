-- The helpers every function of the library may call: each function file
-- is compiled as the body of a function placed after this file (see
-- ./library), so these locals are in its scope.

-- An upload session's claim, the field busy: "<token> <deadline>" of the
-- request writing its parts.

local function taken(b)
    if not b then return false end
    local d = tonumber(string.match(b, ' (%d+)$'))
    return d ~= nil and d > tonumber(redis.call('TIME')[1])
end

local function ours(b, t)
    return b ~= false and b ~= nil and string.sub(b, 1, #t + 1) == t .. ' '
end

local function busy(b)
    local d = tonumber(string.match(b, ' (%d+)$'))
    return {'busy', d - tonumber(redis.call('TIME')[1])}
end

-- The Lua functions that keep image streams, put before the manifest
-- scripts of manifests.c.  An ImageStream is decoded, changed and
-- encoded again by cjson, which escapes "/" (undone here: every "/" it
-- writes is escaped, so each "\/" is one) and writes an empty table as
-- {}: lists that could be empty (status.tags) are left out instead, as
-- OpenShift does.
local function is_encode(obj)
    return (string.gsub(cjson.encode(obj), '\\/', '/'))
end
--  the counter, never behind the log (whose IDs must grow)
local function is_next_rv()
    local rv = redis.call('INCR', 'imagestreams:rv')
    local last = redis.call('XREVRANGE', 'imagestreams:log', '+', '-', 'COUNT', 1)[1]
    if last then
        local n = tonumber(string.match(last[1], '^%d+'))
        if n >= rv then
            rv = n + 1
            redis.call('SET', 'imagestreams:rv', rv)
        end
    end
    return rv
end
local function is_save(p, n, typ, obj, maxlen)
    local key = 'imagestream:' .. p .. '/' .. n
    local rv = is_next_rv()
    obj.metadata.resourceVersion = tostring(rv)
    local text = is_encode(obj)
    if typ == 'DELETED' then
        redis.call('DEL', key)
        redis.call('ZREM', 'project:' .. p .. ':imagestreams', n)
    else
        redis.call('SET', key, text)
        redis.call('ZADD', 'project:' .. p .. ':imagestreams', 0, n)
    end
    local ev = '{"type":"' .. typ .. '","object":' .. text .. '}'
    redis.call('XADD', 'imagestreams:log', 'MAXLEN', maxlen, rv .. '-0', 'p', p, 'e', ev)
    redis.call('PUBLISH', 'imagestreams', p .. ' ' .. rv .. ' ' .. ev)
end
--  a push by tag: a new head, unless the tag already names d
local function is_push(p, n, tag, d, user, ref, now, uid, depth, maxlen)
    local s = redis.call('GET', 'imagestream:' .. p .. '/' .. n)
    local obj, typ
    if s then
        obj, typ = cjson.decode(s), 'MODIFIED'
    else
        obj = {kind = 'ImageStream', apiVersion = 'image.openshift.io/v1',
               metadata = {name = n, namespace = p, uid = uid,
                           generation = 0, creationTimestamp = now},
               spec = {lookupPolicy = {['local'] = false}},
               status = {dockerImageRepository = ref}}
        typ = 'ADDED'
    end
    local tags, t = obj.status.tags or {}, nil
    for _, x in ipairs(tags) do
        if x.tag == tag then t = x end
    end
    if t and t.items[1] and t.items[1].image == d then return end
    obj.metadata.generation = obj.metadata.generation + 1
    local item = {created = now, dockerImageReference = ref .. '@' .. d,
                  image = d, generation = obj.metadata.generation}
    if user ~= '' then item.pushedBy = user end
    if not t then
        t = {tag = tag, items = {}}
        tags[#tags + 1] = t
        table.sort(tags, function(a, b) return a.tag < b.tag end)
    end
    table.insert(t.items, 1, item)
    while #t.items > depth do table.remove(t.items) end
    obj.status.tags = tags
    is_save(p, n, typ, obj, maxlen)
end
local function is_untag(p, n, tag, maxlen)
    local s = redis.call('GET', 'imagestream:' .. p .. '/' .. n)
    if not s then return end
    local obj, out, found = cjson.decode(s), {}, false
    for _, x in ipairs(obj.status.tags or {}) do
        if x.tag == tag then found = true else out[#out + 1] = x end
    end
    if not found then return end
    if #out > 0 then obj.status.tags = out else obj.status.tags = nil end
    is_save(p, n, 'MODIFIED', obj, maxlen)
end
-- a manifest deleted: the tags it headed go (as from the tags list),
-- the other tags forget it; a stream left with no tag in a
-- repository left with no manifest is deleted
local function is_forget(p, n, d, empty, maxlen)
    local s = redis.call('GET', 'imagestream:' .. p .. '/' .. n)
    if not s then return end
    local obj, out, changed = cjson.decode(s), {}, false
    for _, x in ipairs(obj.status.tags or {}) do
        if x.items[1] and x.items[1].image == d then
            changed = true
        else
            local items = {}
            for _, i in ipairs(x.items) do
                if i.image == d then changed = true
                else items[#items + 1] = i end
            end
            x.items = items
            out[#out + 1] = x
        end
    end
    if #out > 0 then obj.status.tags = out else obj.status.tags = nil end
    if #out == 0 and empty then
        is_save(p, n, 'DELETED', obj, maxlen)
    elseif changed then
        is_save(p, n, 'MODIFIED', obj, maxlen)
    end
end
-- the Image object, once; its resourceVersion filled in here: the
-- current one, not a new one, which would leave a hole in the log
local function image_put(r, d, obj)
    redis.call('SADD', 'image:' .. d .. ':repos', r)
    if obj == '' or redis.call('HEXISTS', 'image:' .. d, 'object') == 1 then
        return
    end
    local rv = redis.call('GET', 'imagestreams:rv') or '0'
    obj = string.gsub(obj, '"resourceVersion":""', '"resourceVersion":"' .. rv .. '"', 1)
    redis.call('HSET', 'image:' .. d, 'object', obj)
    redis.call('ZADD', 'images', 0, d)
end

-- Storage given back (gc.c, redis/gc_*.lua) and quotas (quota.c,
-- redis/quota_*.lua).  A blob is a candidate for collection (zset
-- gc:blobs, score: Redis time) once it has neither a link
-- (blob:D:links) nor a manifest naming it (refs:D, "R@M" of each
-- manifest M of R whose config, layers or manifests name D); the
-- collector checks both again, and the upload sessions pinning it
-- (blob:D:uploads), in the function that takes blob:D.
local function gc_now()
    return tonumber(redis.call('TIME')[1])
end
local function gc_project(r)
    return string.match(r, '^[^/]+')
end
--  d unused from now (or from time t) on: a candidate
local function gc_unused(d, r, t)
    local b = 'blob:' .. d
    if redis.call('EXISTS', b) == 1
       and redis.call('SCARD', b .. ':links') == 0
       and redis.call('SCARD', 'refs:' .. d) == 0 then
        redis.call('ZADD', 'gc:blobs', t or gc_now(), d)
        redis.call('HSET', b, 'unlinked', r)
    end
end
--  the lease of the collector running (gc.c); "" (a dry run) holds none
local function gc_hold(token)
    if token == '' then return true end
    if redis.call('GET', 'gc:lease') ~= token then return false end
    redis.call('PEXPIRE', 'gc:lease', 120000)
    return true
end
--  an upload session (upload:ID) whose final PUT found blob b (blob:D)
--  while it was a candidate: the collector leaves b while s is claimed
local function gc_pin(b, s)
    if redis.call('ZSCORE', 'gc:blobs', string.sub(b, 6)) then
        redis.call('SADD', b .. ':uploads', s)
    end
end
--  an object key the collector took: no longer pending, or marked 0
local function gc_taken(key)
    return tonumber(redis.call('ZSCORE', 'objects:pending', key) or '0') == 0
end
--  the sessions index (uploads: ID -> last activity) and the multipart
--  upload of each (uploads:mpu), which outlive an expired session
local function upload_touch(s)
    redis.call('ZADD', 'uploads', gc_now(), string.sub(s, 8))
end
local function upload_keep_mpu(s, mpu)
    redis.call('HSET', 'uploads:mpu', string.sub(s, 8), mpu)
end
local function upload_done(s)
    redis.call('ZREM', 'uploads', string.sub(s, 8))
    redis.call('HDEL', 'uploads:mpu', string.sub(s, 8))
end
--  the bytes all sessions' tails hold in Redis (uploads:tails), each
--  session's in uploads:tail, bounded by registry_upload_tails
local function tail_drop(s)
    local id = string.sub(s, 8)
    local n = tonumber(redis.call('HGET', 'uploads:tail', id) or '0')
    if n > 0 then redis.call('DECRBY', 'uploads:tails', n) end
    redis.call('HDEL', 'uploads:tail', id)
end
--  n more bytes for session s, if they fit under limit (0: no limit);
--  the tails of sessions expired meanwhile are given back on the way
local function tail_add(s, n, limit)
    local used = tonumber(redis.call('GET', 'uploads:tails') or '0')
    if limit > 0 and used + n > limit then
        local c = redis.call('GET', 'uploads:tail:cursor') or '0'
        local scan = redis.call('HSCAN', 'uploads:tail', c, 'COUNT', 256)
        redis.call('SET', 'uploads:tail:cursor', scan[1])
        for i = 1, #scan[2], 2 do
            if redis.call('EXISTS', 'upload:' .. scan[2][i]) == 0 then
                tail_drop('upload:' .. scan[2][i])
            end
        end
        used = tonumber(redis.call('GET', 'uploads:tails') or '0')
        if used + n > limit then return false end
    end
    redis.call('HINCRBY', 'uploads:tail', string.sub(s, 8), n)
    redis.call('INCRBY', 'uploads:tails', n)
    return true
end
--  the digests manifest m names (image:M refs, or its body when stored
--  before refs were kept)
local function manifest_names(m)
    local out, s = {}, redis.call('HGET', 'image:' .. m, 'refs')
    if s then
        for d in string.gmatch(s, '%S+') do out[#out + 1] = d end
        return out
    end
    local ok, obj = pcall(cjson.decode, redis.call('HGET', 'image:' .. m, 'body') or '')
    if not ok or type(obj) ~= 'table' then return out end
    if type(obj.config) == 'table' and type(obj.config.digest) == 'string' then
        out[#out + 1] = obj.config.digest
    end
    for _, k in ipairs({'layers', 'manifests'}) do
        for _, x in ipairs(type(obj[k]) == 'table' and obj[k] or {}) do
            if type(x) == 'table' and type(x.digest) == 'string' then
                out[#out + 1] = x.digest
            end
        end
    end
    return out
end
--  manifest_put: m of r names argv[from], argv[from + 2], ...
local function manifest_refs(r, m, argv, from)
    local list = {}
    for i = from, #argv, 2 do
        list[#list + 1] = argv[i]
        redis.call('SADD', 'refs:' .. argv[i], r .. '@' .. m)
    end
    redis.call('HSET', 'image:' .. m, 'refs', table.concat(list, ' '), 'pushed', gc_now())
end
--  m left r: what only it named becomes a candidate (from time t on),
--  and an Image no repository holds any more too
local function manifest_unref(r, m, t)
    for _, d in ipairs(manifest_names(m)) do
        redis.call('SREM', 'refs:' .. d, r .. '@' .. m)
        gc_unused(d, r, t)
    end
    if redis.call('SCARD', 'image:' .. m .. ':repos') == 0 then
        redis.call('ZADD', 'gc:images', t or gc_now(), m)
    end
end
--  the images an image stream's history holds (kept until pruned)
local function is_history(p, n)
    local out, s = {}, redis.call('GET', 'imagestream:' .. p .. '/' .. n)
    if not s then return out end
    for _, t in ipairs(cjson.decode(s).status.tags or {}) do
        for _, i in ipairs(t.items or {}) do out[#out + 1] = i.image end
    end
    return out
end
--  each blob counts once in its project's storage (project:P:blobs: D
--  -> how many of P's repositories link it; project:P:storage: bytes)
local function quota_link(r, d)
    local p = 'project:' .. gc_project(r)
    if redis.call('HINCRBY', p .. ':blobs', d, 1) == 1 then
        redis.call('INCRBY', p .. ':storage', redis.call('HGET', 'blob:' .. d, 'size') or 0)
    end
end
local function quota_unlink(r, d)
    local p = 'project:' .. gc_project(r)
    local n = redis.call('HINCRBY', p .. ':blobs', d, -1)
    if n <= 0 then
        redis.call('HDEL', p .. ':blobs', d)
    end
    if n == 0 then
        redis.call('DECRBY', p .. ':storage', redis.call('HGET', 'blob:' .. d, 'size') or 0)
    end
end
--  d linked in r (new: SADD's answer), when (repo:R:linked): gc
--  --untagged unlinks only what no manifest names for the grace, so that
--  a push between its layers and its manifest keeps them
local function gc_linked(r, d, new)
    redis.call('ZADD', 'repo:' .. r .. ':linked', gc_now(), d)
    if new == 1 then quota_link(r, d) end
end
--  d unlinked from r: maybe a candidate (from time t on)
local function gc_unlinked(r, d, t)
    redis.call('ZREM', 'repo:' .. r .. ':linked', d)
    quota_unlink(r, d)
    gc_unused(d, r, t)
end
--  the message of the storage quota that size more bytes of d ("" when
--  unknown) would exceed in r's project, or nil
local function quota_storage(r, d, size)
    local p = gc_project(r)
    local hard = redis.call('HGET', 'quota:' .. p, 'storage')
    if not hard or (d ~= '' and redis.call('HEXISTS', 'project:' .. p .. ':blobs', d) == 1) then
        return nil
    end
    local used = math.max(tonumber(redis.call('GET', 'project:' .. p .. ':storage') or '0'), 0)
    size = tonumber(size)
    if used + size > tonumber(hard) or (size == 0 and used >= tonumber(hard)) then
        return 'exceeded quota: storage of project "' .. p .. '": requested ' .. size
               .. ' bytes, used ' .. used .. ', limited ' .. hard
    end
    return nil
end
