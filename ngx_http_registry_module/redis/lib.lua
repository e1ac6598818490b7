-- The helpers every function of the library may call: each function file
-- is compiled as the body of a function placed after this file (see
-- ./library), so these locals are in its scope.
--
-- The convention of a function file (NAME.lua is the function NAME):
-- "-- flags: no-writes" first when it only reads; a header saying what
-- it does, its KEYS and its ARGV; named locals unpacked at the top.
-- Every key known before the call comes in KEYS; a key that depends on
-- data read inside (the image of each referrer, the roles of the token's
-- user) is built by one helper of the table key below, so that each key
-- pattern is spelled once in Lua.  The admin_* functions, called by
-- scripts/lib/admin.sh, take no KEYS: they build every key with these
-- helpers, so that no key name is spelled in shell; they answer a
-- lowercase status first ("ok", "unknown", ...), then any rows.
-- KEYS.md documents every key.

-- One helper per key pattern (KEYS.md).
local key = {}

function key.blob(d) return 'blob:' .. d end
function key.blob_links(d) return 'blob:' .. d .. ':links' end
function key.image(d) return 'image:' .. d end
function key.image_repos(d) return 'image:' .. d .. ':repos' end
function key.repo_blobs(r) return 'repo:' .. r .. ':blobs' end
function key.repo_manifests(r) return 'repo:' .. r .. ':manifests' end
function key.repo_tags(r) return 'repo:' .. r .. ':tags' end
function key.repo_tagnames(r) return 'repo:' .. r .. ':tagnames' end
function key.repo_referrers(r, d)
    return 'repo:' .. r .. ':referrers:' .. d
end
function key.imagestream(r) return 'imagestream:' .. r end
function key.imagestream_tags(r) return 'imagestream:' .. r .. ':tags' end
function key.imagestream_images(r) return 'imagestream:' .. r .. ':images' end
function key.project_imagestreams(p)
    return 'project:' .. p .. ':imagestreams'
end
function key.imagestreams_rv() return 'imagestreams:rv' end
function key.imagestreams_log() return 'imagestreams:log' end
function key.events() return 'events' end

-- users, tokens, projects and role bindings (authorize, admin_*)
function key.users() return 'auth:users' end
function key.projects() return 'auth:projects' end
function key.clusterusers() return 'auth:clusterusers' end
function key.user(u) return 'auth:user:' .. u end
function key.user_tokens(u) return 'auth:user:' .. u .. ':tokens' end
function key.token(h) return 'auth:token:' .. h end
function key.clusterroles(u) return 'auth:clusterroles:' .. u end
function key.project(p) return 'auth:project:' .. p end
function key.members(p) return 'auth:rb:' .. p end
function key.roles(p, u) return 'auth:rb:' .. p .. ':' .. u end

--  {"ok", "ROLE\tUSER" of each binding, sorted}: the users of the set
--  users, each with the roles in the set roles(u)
local function role_rows(users, roles)
    local out = {}
    for _, u in ipairs(redis.call('SMEMBERS', users)) do
        for _, r in ipairs(redis.call('SMEMBERS', roles(u))) do
            out[#out + 1] = r .. '\t' .. u
        end
    end
    table.sort(out)
    table.insert(out, 1, 'ok')
    return out
end

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

-- Whether the request holding token holds the claim of the session.
local function upload_ours(session, token)
    return ours(redis.call('HGET', session, 'busy'), token)
end

-- The guard of a change to a session: nil when it may go on, else the
-- answer: -1 no session; 0 moved on (its offset is not the one the
-- request read); {'busy', seconds left} claimed by another request.
-- With a token, the claim must be that request's (0 otherwise).
local function upload_guard(session, offset, token)
    local u = redis.call('HMGET', session, 'offset', 'busy')
    if not u[1] then return -1 end
    if u[1] ~= offset then return 0 end
    if token then
        if not ours(u[2], token) then return 0 end
    elseif taken(u[2]) then
        return busy(u[2])
    end
    return nil
end

-- The Lua functions that keep image streams, put before the manifest
-- functions that call them (R = P/N).  A stream is kept in parts, so
-- that a change of one tag reads and writes that tag only, whatever the
-- stream's tag count:
--   imagestream:R          hash: uid, created, generation, rv (its
--                          resourceVersion), ref (dockerImageRepository)
--   imagestream:R:tags     hash: tag -> {"tag":..,"items":[..]}, the
--                          element of status.tags, newest entry first
--   imagestream:R:images   hash: D -> how many entries of R's histories
--                          name D (what prune and is_forget look up)
-- The whole object is assembled when read (is_whole), its tags in the
-- order of repo:R:tagnames.  A stream written whole by an older
-- version (imagestream:R a string of JSON) is read as it is and split
-- at its first change (is_split).
--
-- cjson escapes "/" (undone here: every "/" it writes is escaped, so
-- each "\/" is one) and writes an empty table as {}: a list that may be
-- empty is written by hand.
local function is_encode(obj)
    return (string.gsub(cjson.encode(obj), '\\/', '/'))
end

-- the tag removed, as status.tags carries it in a watch event
local function is_gone(tag)
    return '{"tag":' .. is_encode(tag) .. ',"items":[]}'
end

local function is_meta(sk)
    local v = redis.call('HMGET', sk, 'uid', 'created', 'generation', 'rv',
                         'ref')
    return {uid = v[1], created = v[2], generation = tonumber(v[3]),
            rv = v[4] or '0', ref = v[5]}
end

-- the ImageStream with the given elements of status.tags (JSON texts)
local function is_render(r, m, tags)
    local p, n = string.match(r, '^([^/]*)/(.*)$')
    local s = '{"kind":"ImageStream","apiVersion":"image.openshift.io/v1",'
        .. '"metadata":{"name":' .. is_encode(n)
        .. ',"namespace":' .. is_encode(p)
        .. ',"uid":' .. is_encode(m.uid)
        .. ',"resourceVersion":' .. is_encode(m.rv)
        .. ',"generation":' .. string.format('%d', m.generation)
        .. ',"creationTimestamp":' .. is_encode(m.created)
        .. '},"spec":{"lookupPolicy":{"local":false}},'
        .. '"status":{"dockerImageRepository":' .. is_encode(m.ref)
    if #tags == 0 then
        return s .. '}}'
    end
    return s .. ',"tags":[' .. table.concat(tags, ',') .. ']}}'
end

-- the histories of stream R (JSON texts, the elements of status.tags),
-- in tag order; {} when there is no stream
local function is_tag_texts(r)
    local sk = key.imagestream(r)
    local t = redis.call('TYPE', sk).ok
    local out = {}
    if t == 'string' then
        for _, x in ipairs(cjson.decode(redis.call('GET', sk)).status.tags or {}) do
            out[#out + 1] = is_encode(x)
        end
    elseif t == 'hash' then
        local names = redis.call('ZRANGE', key.repo_tagnames(r), 0, -1)
        for i = 1, #names, 1000 do
            local j = math.min(i + 999, #names)
            local got = redis.call('HMGET', key.imagestream_tags(r), unpack(names, i, j))
            for k = 1, j - i + 1 do
                if got[k] then out[#out + 1] = got[k] end
            end
        end
    end
    return out
end

-- the whole ImageStream R, or nil
local function is_whole(r)
    local sk = key.imagestream(r)
    local t = redis.call('TYPE', sk).ok
    if t == 'string' then
        return redis.call('GET', sk)
    elseif t ~= 'hash' then
        return nil
    end
    return is_render(r, is_meta(sk), is_tag_texts(r))
end

-- a stream written whole by an older version, split into its parts
local function is_split(r)
    local sk = key.imagestream(r)
    if redis.call('TYPE', sk).ok ~= 'string' then return end
    local obj = cjson.decode(redis.call('GET', sk))
    local m, st = obj.metadata or {}, obj.status or {}
    redis.call('DEL', sk)
    redis.call('HSET', sk, 'uid', m.uid or '', 'created', m.creationTimestamp or '',
               'generation', m.generation or 0, 'rv', m.resourceVersion or '0',
               'ref', st.dockerImageRepository or '')
    for _, t in ipairs(st.tags or {}) do
        if #t.items > 0 then
            redis.call('HSET', key.imagestream_tags(r), t.tag, is_encode(t))
            for _, i in ipairs(t.items) do
                redis.call('HINCRBY', key.imagestream_images(r), i.image, 1)
            end
        end
    end
end

-- an entry naming d left R's histories
local function is_unref(r, d)
    if redis.call('HINCRBY', key.imagestream_images(r), d, -1) <= 0 then
        redis.call('HDEL', key.imagestream_images(r), d)
    end
end

--  the counter, never behind the log (whose IDs must grow)
local function is_next_rv()
    local rv = redis.call('INCR', key.imagestreams_rv())
    local last = redis.call('XREVRANGE', key.imagestreams_log(), '+', '-', 'COUNT', 1)[1]
    if last then
        local n = tonumber(string.match(last[1], '^%d+'))
        if n >= rv then
            rv = n + 1
            redis.call('SET', key.imagestreams_rv(), rv)
        end
    end
    return rv
end

-- One change of stream R: the next resourceVersion, and the watch event
-- appended to the log and published.  The event's object is the stream
-- with, in status.tags, only the tags given (the one that changed, or
-- none): its size does not grow with the stream's tag count.  m: the
-- metadata of a stream being deleted (read before).
local function is_save(p, r, typ, tags, maxlen, m)
    local sk = key.imagestream(r)
    local rv = is_next_rv()
    if m then
        m.rv = tostring(rv)
    else
        redis.call('HSET', sk, 'rv', rv)
        m = is_meta(sk)
    end
    local ev = '{"type":"' .. typ .. '","object":' .. is_render(r, m, tags) .. '}'
    redis.call('XADD', key.imagestreams_log(), 'MAXLEN', maxlen, rv .. '-0', 'p', p, 'e', ev)
    redis.call('PUBLISH', 'imagestreams', p .. ' ' .. rv .. ' ' .. ev)
end

-- the tag's history with the entries kept, and its event
local function is_set_tag(p, r, tag, items, maxlen)
    local text = is_encode({tag = tag, items = items})
    redis.call('HSET', key.imagestream_tags(r), tag, text)
    is_save(p, r, 'MODIFIED', {text}, maxlen)
end

--  a push by tag: a new head, unless the tag already names d
local function is_push(p, n, tag, d, user, ref, now, uid, depth, maxlen)
    local r = p .. '/' .. n
    local sk = key.imagestream(r)
    is_split(r)
    local t = redis.call('HGET', key.imagestream_tags(r), tag)
    local items = t and cjson.decode(t).items or {}
    if items[1] and items[1].image == d then return end
    local typ = 'MODIFIED'
    if redis.call('EXISTS', sk) == 0 then
        redis.call('HSET', sk, 'uid', uid, 'created', now, 'generation', 0,
                   'ref', ref)
        redis.call('ZADD', key.project_imagestreams(p), 0, n)
        typ = 'ADDED'
    end
    local item = {created = now, dockerImageReference = ref .. '@' .. d,
                  image = d,
                  generation = redis.call('HINCRBY', sk, 'generation', 1)}
    if user ~= '' then item.pushedBy = user end
    table.insert(items, 1, item)
    redis.call('HINCRBY', key.imagestream_images(r), d, 1)
    while #items > depth do
        is_unref(r, table.remove(items).image)
    end
    local text = is_encode({tag = tag, items = items})
    redis.call('HSET', key.imagestream_tags(r), tag, text)
    is_save(p, r, typ, {text}, maxlen)
end

local function is_untag(p, n, tag, maxlen)
    local r = p .. '/' .. n
    is_split(r)
    local t = redis.call('HGET', key.imagestream_tags(r), tag)
    if not t then return end
    for _, i in ipairs(cjson.decode(t).items) do
        is_unref(r, i.image)
    end
    redis.call('HDEL', key.imagestream_tags(r), tag)
    is_save(p, r, 'MODIFIED', {is_gone(tag)}, maxlen)
end

-- a manifest deleted: the tags it headed go (as from the tags list), the
-- other tags forget it, one event per tag changed; a stream left with
-- no tag in a repository left with no manifest is deleted (one event)
local function is_forget(p, n, d, empty, maxlen)
    local r = p .. '/' .. n
    local sk = key.imagestream(r)
    is_split(r)
    if redis.call('EXISTS', sk) == 0 then return end
    local changed = {}
    if redis.call('HEXISTS', key.imagestream_images(r), d) == 1 then
        local all = redis.call('HGETALL', key.imagestream_tags(r))
        for i = 1, #all, 2 do
            if string.find(all[i + 1], d, 1, true) then
                local items, kept = cjson.decode(all[i + 1]).items, {}
                for _, x in ipairs(items) do
                    if x.image ~= d then kept[#kept + 1] = x end
                end
                if items[1].image == d then
                    for _, x in ipairs(kept) do is_unref(r, x.image) end
                    redis.call('HDEL', key.imagestream_tags(r), all[i])
                    kept = nil
                end
                changed[#changed + 1] = {all[i], kept}
            end
        end
        redis.call('HDEL', key.imagestream_images(r), d)
    end
    if empty and redis.call('HLEN', key.imagestream_tags(r)) == 0 then
        local m = is_meta(sk)
        redis.call('DEL', sk, key.imagestream_tags(r), key.imagestream_images(r))
        redis.call('ZREM', key.project_imagestreams(p), n)
        is_save(p, r, 'DELETED', {}, maxlen, m)
        return
    end
    table.sort(changed, function(a, b) return a[1] < b[1] end)
    for _, c in ipairs(changed) do
        if c[2] then
            is_set_tag(p, r, c[1], c[2], maxlen)
        else
            is_save(p, r, 'MODIFIED', {is_gone(c[1])}, maxlen)
        end
    end
end

-- the Image object, once; its resourceVersion filled in here: the
-- current one, not a new one, which would leave a hole in the log.  An
-- index's manifests learn their parent (image:C:parents): prune keeps
-- the Image of a manifest whose index it keeps.
local function image_put(r, d, obj)
    redis.call('SADD', key.image_repos(d), r)
    if obj == '' or redis.call('HEXISTS', key.image(d), 'object') == 1 then
        return
    end
    local rv = redis.call('GET', key.imagestreams_rv()) or '0'
    obj = string.gsub(obj, '"resourceVersion":""', '"resourceVersion":"' .. rv .. '"', 1)
    redis.call('HSET', key.image(d), 'object', obj)
    redis.call('ZADD', key.images(), 0, d)
    if string.find(obj, '"dockerImageManifests":', 1, true) then
        for _, c in ipairs(cjson.decode(obj).dockerImageManifests or {}) do
            redis.call('SADD', key.image_parents(c.digest), d)
        end
    end
end

-- Storage given back (gc.c, redis/gc_*.lua) and quotas (quota.c,
-- redis/quota_*.lua).  A blob is a candidate for collection (gc:blobs,
-- score: Redis time) once it has neither a link (blob:D:links) nor a
-- manifest naming it (refs:D, "R@M" of each manifest M of R whose
-- config, layers or manifests name D); the collector checks both again,
-- and the upload sessions pinning it (blob:D:uploads), in the function
-- that takes blob:D.
function key.refs(d) return 'refs:' .. d end
function key.blob_uploads(d) return 'blob:' .. d .. ':uploads' end
function key.image_parents(d) return 'image:' .. d .. ':parents' end
function key.repo_linked(r) return 'repo:' .. r .. ':linked' end
function key.upload(id) return 'upload:' .. id end
function key.upload_etags(id) return 'upload:' .. id .. ':etags' end
function key.upload_tail(id) return 'upload:' .. id .. ':tail' end
function key.project_blobs(p) return 'project:' .. p .. ':blobs' end
function key.project_storage(p) return 'project:' .. p .. ':storage' end
function key.quota(p) return 'quota:' .. p end
function key.blobs() return 'blobs' end
function key.images() return 'images' end
function key.repos() return 'repos' end
function key.pending() return 'objects:pending' end
function key.gc_blobs() return 'gc:blobs' end
function key.gc_images() return 'gc:images' end
function key.gc_lease() return 'gc:lease' end
function key.gc_mpus() return 'gc:mpus' end
function key.gc_index() return 'gc:index' end
function key.uploads() return 'uploads' end
function key.uploads_mpu() return 'uploads:mpu' end
function key.uploads_tail() return 'uploads:tail' end
function key.uploads_tails() return 'uploads:tails' end
function key.uploads_cursor() return 'uploads:tail:cursor' end

local function gc_now()
    return tonumber(redis.call('TIME')[1])
end
local function gc_project(r)
    return string.match(r, '^[^/]+')
end
--  the session id of upload:ID
local function upload_id(session)
    return string.sub(session, 8)
end
--  d unused from now (or from time t) on: a candidate
local function gc_unused(d, r, t)
    local b = key.blob(d)
    if redis.call('EXISTS', b) == 1
       and redis.call('SCARD', key.blob_links(d)) == 0
       and redis.call('SCARD', key.refs(d)) == 0 then
        redis.call('ZADD', key.gc_blobs(), t or gc_now(), d)
        redis.call('HSET', b, 'unlinked', r)
    end
end
--  the lease of the collector running (gc.c); "" (a dry run) holds none
local function gc_hold(token)
    if token == '' then return true end
    if redis.call('GET', key.gc_lease()) ~= token then return false end
    redis.call('PEXPIRE', key.gc_lease(), 120000)
    return true
end
--  an upload session whose final PUT found blob b (blob:D) while it was
--  a candidate: the collector leaves b while the session is claimed
local function gc_pin(b, session)
    local d = string.sub(b, 6)
    if redis.call('ZSCORE', key.gc_blobs(), d) then
        redis.call('SADD', key.blob_uploads(d), session)
    end
end
--  an object key the collector took: no longer pending, or marked 0
local function gc_taken(s3key)
    return tonumber(redis.call('ZSCORE', key.pending(), s3key) or '0') == 0
end
--  the sessions index (uploads: ID -> last activity) and the multipart
--  upload of each (uploads:mpu), which outlive an expired session
local function upload_touch(session)
    redis.call('ZADD', key.uploads(), gc_now(), upload_id(session))
end
local function upload_keep_mpu(session, mpu)
    redis.call('HSET', key.uploads_mpu(), upload_id(session), mpu)
end
local function upload_done(session)
    redis.call('ZREM', key.uploads(), upload_id(session))
    redis.call('HDEL', key.uploads_mpu(), upload_id(session))
end
--  the bytes all sessions' tails hold in Redis (uploads:tails), each
--  session's in uploads:tail, bounded by registry_upload_tails
local function tail_drop(session)
    local id = upload_id(session)
    local n = tonumber(redis.call('HGET', key.uploads_tail(), id) or '0')
    if n > 0 then redis.call('DECRBY', key.uploads_tails(), n) end
    redis.call('HDEL', key.uploads_tail(), id)
end
--  n more bytes for the session, if they fit under limit (0: none); the
--  tails of sessions expired meanwhile are given back on the way
local function tail_add(session, n, limit)
    local used = tonumber(redis.call('GET', key.uploads_tails()) or '0')
    if limit > 0 and used + n > limit then
        local c = redis.call('GET', key.uploads_cursor()) or '0'
        local scan = redis.call('HSCAN', key.uploads_tail(), c, 'COUNT', 256)
        redis.call('SET', key.uploads_cursor(), scan[1])
        for i = 1, #scan[2], 2 do
            if redis.call('EXISTS', key.upload(scan[2][i])) == 0 then
                tail_drop(key.upload(scan[2][i]))
            end
        end
        used = tonumber(redis.call('GET', key.uploads_tails()) or '0')
        if used + n > limit then return false end
    end
    redis.call('HINCRBY', key.uploads_tail(), upload_id(session), n)
    redis.call('INCRBY', key.uploads_tails(), n)
    return true
end
--  the digests manifest m names (image:M refs, or its body when stored
--  before refs were kept)
local function manifest_names(m)
    local out, s = {}, redis.call('HGET', key.image(m), 'refs')
    if s then
        for d in string.gmatch(s, '%S+') do out[#out + 1] = d end
        return out
    end
    local ok, obj = pcall(cjson.decode, redis.call('HGET', key.image(m), 'body') or '')
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
        redis.call('SADD', key.refs(argv[i]), r .. '@' .. m)
    end
    redis.call('HSET', key.image(m), 'refs', table.concat(list, ' '),
               'pushed', gc_now())
end
--  m left r: what only it named becomes a candidate (from time t on),
--  and an Image no repository holds any more too
local function manifest_unref(r, m, t)
    for _, d in ipairs(manifest_names(m)) do
        redis.call('SREM', key.refs(d), r .. '@' .. m)
        gc_unused(d, r, t)
    end
    if redis.call('SCARD', key.image_repos(m)) == 0 then
        redis.call('ZADD', key.gc_images(), t or gc_now(), m)
    end
end
--  the images the history of stream R names (kept by gc --untagged:
--  pruning decides about them)
local function is_history(r)
    local sk = key.imagestream(r)
    if redis.call('TYPE', sk).ok ~= 'string' then
        return redis.call('HKEYS', key.imagestream_images(r))
    end
    local out = {}
    for _, t in ipairs(cjson.decode(redis.call('GET', sk)).status.tags or {}) do
        for _, i in ipairs(t.items or {}) do out[#out + 1] = i.image end
    end
    return out
end
--  each blob counts once in its project's storage (project:P:blobs: D
--  -> how many of P's repositories link it; project:P:storage: bytes)
local function quota_link(r, d)
    local p = gc_project(r)
    if redis.call('HINCRBY', key.project_blobs(p), d, 1) == 1 then
        redis.call('INCRBY', key.project_storage(p),
                   redis.call('HGET', key.blob(d), 'size') or 0)
    end
end
local function quota_unlink(r, d)
    local p = gc_project(r)
    local n = redis.call('HINCRBY', key.project_blobs(p), d, -1)
    if n <= 0 then
        redis.call('HDEL', key.project_blobs(p), d)
    end
    if n == 0 then
        redis.call('DECRBY', key.project_storage(p),
                   redis.call('HGET', key.blob(d), 'size') or 0)
    end
end
--  d linked in r (new: SADD's answer), and when (repo:R:linked): gc
--  --untagged unlinks only what no manifest names for the grace, so
--  that a push between its layers and its manifest keeps them
local function gc_linked(r, d, new)
    redis.call('ZADD', key.repo_linked(r), gc_now(), d)
    if new == 1 then quota_link(r, d) end
end
--  d unlinked from r: maybe a candidate (from time t on)
local function gc_unlinked(r, d, t)
    redis.call('ZREM', key.repo_linked(r), d)
    quota_unlink(r, d)
    gc_unused(d, r, t)
end
--  the message of the storage quota that size more bytes of d ("" when
--  unknown) would exceed in r's project, or nil
local function quota_storage(r, d, size)
    local p = gc_project(r)
    local hard = redis.call('HGET', key.quota(p), 'storage')
    if not hard or (d ~= '' and redis.call('HEXISTS', key.project_blobs(p), d) == 1) then
        return nil
    end
    local used = math.max(tonumber(redis.call('GET', key.project_storage(p)) or '0'), 0)
    size = tonumber(size)
    if used + size > tonumber(hard) or (size == 0 and used >= tonumber(hard)) then
        return 'exceeded quota: storage of project "' .. p .. '": requested ' .. size
               .. ' bytes, used ' .. used .. ', limited ' .. hard
    end
    return nil
end
--  the message of the limit a manifest of r would exceed (its image's
--  size; a push by tag to a repository without an image stream makes
--  one), or nil
local function quota_image(r, tag, size)
    local p, n = string.match(r, '^([^/]+)/(.+)$')
    local q = redis.call('HMGET', key.quota(p), 'imagestreams', 'image-size')
    if q[2] and tonumber(size) > tonumber(q[2]) then
        return 'exceeded limit: image-size of project "' .. p .. '": the image is '
               .. size .. ' bytes, limited ' .. q[2]
    end
    local streams = key.project_imagestreams(p)
    if q[1] and tag ~= '' and not redis.call('ZSCORE', streams, n) then
        local used = redis.call('ZCARD', streams)
        if used + 1 > tonumber(q[1]) then
            return 'exceeded quota: openshift.io/imagestreams of project "' .. p
                   .. '": requested 1, used ' .. used .. ', limited ' .. q[1]
        end
    end
    return nil
end
