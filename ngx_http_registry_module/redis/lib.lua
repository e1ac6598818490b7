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

-- One helper per key pattern (KEYS.md).  Those no function calls yet are
-- for the image-stream functions, which still spell their keys (being
-- redesigned).
local key = {}

function key.blob(d) return 'blob:' .. d end
function key.blob_links(d) return 'blob:' .. d .. ':links' end
function key.image(d) return 'image:' .. d end
function key.image_repos(d) return 'image:' .. d .. ':repos' end
function key.repo_blobs(r) return 'repo:' .. r .. ':blobs' end
function key.repo_manifests(r) return 'repo:' .. r .. ':manifests' end
function key.repo_tags(r) return 'repo:' .. r .. ':tags' end
function key.repo_referrers(r, d)
    return 'repo:' .. r .. ':referrers:' .. d
end
function key.imagestream(p, n) return 'imagestream:' .. p .. '/' .. n end
function key.project_imagestreams(p)
    return 'project:' .. p .. ':imagestreams'
end

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
