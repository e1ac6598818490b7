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

local function is_key(r)
    return 'imagestream:' .. r
end

-- the tag removed, as status.tags carries it in a watch event
local function is_gone(tag)
    return '{"tag":' .. is_encode(tag) .. ',"items":[]}'
end

local function is_meta(key)
    local v = redis.call('HMGET', key, 'uid', 'created', 'generation', 'rv',
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
    local key = is_key(r)
    local t = redis.call('TYPE', key).ok
    local out = {}
    if t == 'string' then
        for _, x in ipairs(cjson.decode(redis.call('GET', key)).status.tags or {}) do
            out[#out + 1] = is_encode(x)
        end
    elseif t == 'hash' then
        local names = redis.call('ZRANGE', 'repo:' .. r .. ':tagnames', 0, -1)
        for i = 1, #names, 1000 do
            local j = math.min(i + 999, #names)
            local got = redis.call('HMGET', key .. ':tags', unpack(names, i, j))
            for k = 1, j - i + 1 do
                if got[k] then out[#out + 1] = got[k] end
            end
        end
    end
    return out
end

-- the whole ImageStream R, or nil
local function is_whole(r)
    local key = is_key(r)
    local t = redis.call('TYPE', key).ok
    if t == 'string' then
        return redis.call('GET', key)
    elseif t ~= 'hash' then
        return nil
    end
    return is_render(r, is_meta(key), is_tag_texts(r))
end

-- a stream written whole by an older version, split into its parts
local function is_split(key)
    if redis.call('TYPE', key).ok ~= 'string' then return end
    local obj = cjson.decode(redis.call('GET', key))
    local m, st = obj.metadata or {}, obj.status or {}
    redis.call('DEL', key)
    redis.call('HSET', key, 'uid', m.uid or '', 'created', m.creationTimestamp or '',
               'generation', m.generation or 0, 'rv', m.resourceVersion or '0',
               'ref', st.dockerImageRepository or '')
    for _, t in ipairs(st.tags or {}) do
        if #t.items > 0 then
            redis.call('HSET', key .. ':tags', t.tag, is_encode(t))
            for _, i in ipairs(t.items) do
                redis.call('HINCRBY', key .. ':images', i.image, 1)
            end
        end
    end
end

-- an entry naming d left R's histories
local function is_unref(key, d)
    if redis.call('HINCRBY', key .. ':images', d, -1) <= 0 then
        redis.call('HDEL', key .. ':images', d)
    end
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

-- One change of stream R: the next resourceVersion, and the watch event
-- appended to the log and published.  The event's object is the stream
-- with, in status.tags, only the tags given (the one that changed, or
-- none): its size does not grow with the stream's tag count.  m: the
-- metadata of a stream being deleted (read before).
local function is_save(p, r, typ, tags, maxlen, m)
    local key = is_key(r)
    local rv = is_next_rv()
    if m then
        m.rv = tostring(rv)
    else
        redis.call('HSET', key, 'rv', rv)
        m = is_meta(key)
    end
    local ev = '{"type":"' .. typ .. '","object":' .. is_render(r, m, tags) .. '}'
    redis.call('XADD', 'imagestreams:log', 'MAXLEN', maxlen, rv .. '-0', 'p', p, 'e', ev)
    redis.call('PUBLISH', 'imagestreams', p .. ' ' .. rv .. ' ' .. ev)
end

-- the tag's history with the entries kept, and its event
local function is_set_tag(p, r, tag, items, maxlen)
    local text = is_encode({tag = tag, items = items})
    redis.call('HSET', is_key(r) .. ':tags', tag, text)
    is_save(p, r, 'MODIFIED', {text}, maxlen)
end

--  a push by tag: a new head, unless the tag already names d
local function is_push(p, n, tag, d, user, ref, now, uid, depth, maxlen)
    local r = p .. '/' .. n
    local key = is_key(r)
    is_split(key)
    local t = redis.call('HGET', key .. ':tags', tag)
    local items = t and cjson.decode(t).items or {}
    if items[1] and items[1].image == d then return end
    local typ = 'MODIFIED'
    if redis.call('EXISTS', key) == 0 then
        redis.call('HSET', key, 'uid', uid, 'created', now, 'generation', 0,
                   'ref', ref)
        redis.call('ZADD', 'project:' .. p .. ':imagestreams', 0, n)
        typ = 'ADDED'
    end
    local item = {created = now, dockerImageReference = ref .. '@' .. d,
                  image = d,
                  generation = redis.call('HINCRBY', key, 'generation', 1)}
    if user ~= '' then item.pushedBy = user end
    table.insert(items, 1, item)
    redis.call('HINCRBY', key .. ':images', d, 1)
    while #items > depth do
        is_unref(key, table.remove(items).image)
    end
    local text = is_encode({tag = tag, items = items})
    redis.call('HSET', key .. ':tags', tag, text)
    is_save(p, r, typ, {text}, maxlen)
end

local function is_untag(p, n, tag, maxlen)
    local r = p .. '/' .. n
    local key = is_key(r)
    is_split(key)
    local t = redis.call('HGET', key .. ':tags', tag)
    if not t then return end
    for _, i in ipairs(cjson.decode(t).items) do
        is_unref(key, i.image)
    end
    redis.call('HDEL', key .. ':tags', tag)
    is_save(p, r, 'MODIFIED', {is_gone(tag)}, maxlen)
end

-- a manifest deleted: the tags it headed go (as from the tags list), the
-- other tags forget it, one event per tag changed; a stream left with
-- no tag in a repository left with no manifest is deleted (one event)
local function is_forget(p, n, d, empty, maxlen)
    local r = p .. '/' .. n
    local key = is_key(r)
    is_split(key)
    if redis.call('EXISTS', key) == 0 then return end
    local changed = {}
    if redis.call('HEXISTS', key .. ':images', d) == 1 then
        local all = redis.call('HGETALL', key .. ':tags')
        for i = 1, #all, 2 do
            if string.find(all[i + 1], d, 1, true) then
                local items, kept = cjson.decode(all[i + 1]).items, {}
                for _, x in ipairs(items) do
                    if x.image ~= d then kept[#kept + 1] = x end
                end
                if items[1].image == d then
                    for _, x in ipairs(kept) do is_unref(key, x.image) end
                    redis.call('HDEL', key .. ':tags', all[i])
                    kept = nil
                end
                changed[#changed + 1] = {all[i], kept}
            end
        end
        redis.call('HDEL', key .. ':images', d)
    end
    if empty and redis.call('HLEN', key .. ':tags') == 0 then
        local m = is_meta(key)
        redis.call('DEL', key, key .. ':tags', key .. ':images')
        redis.call('ZREM', 'project:' .. p .. ':imagestreams', n)
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
    redis.call('SADD', 'image:' .. d .. ':repos', r)
    if obj == '' or redis.call('HEXISTS', 'image:' .. d, 'object') == 1 then
        return
    end
    local rv = redis.call('GET', 'imagestreams:rv') or '0'
    obj = string.gsub(obj, '"resourceVersion":""', '"resourceVersion":"' .. rv .. '"', 1)
    redis.call('HSET', 'image:' .. d, 'object', obj)
    redis.call('ZADD', 'images', 0, d)
    if string.find(obj, '"dockerImageManifests":', 1, true) then
        for _, c in ipairs(cjson.decode(obj).dockerImageManifests or {}) do
            redis.call('SADD', 'image:' .. c.digest .. ':parents', d)
        end
    end
end
