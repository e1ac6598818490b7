-- `scripts/registry prune images`, step 2, after every stream's step 1:
-- the Images of the digests given that nothing keeps.  An Image is kept
-- when it was created after CUTOFF, when it is pushed to a repository
-- outside PROJECT (if given), when a history entry of a stream of one
-- of its repositories names it (imagestream:R:images, less the DISCOUNT
-- of entries a dry run would remove), or when an index that is kept
-- lists it (image:D:parents) or it is a referrer of a kept image (its
-- subject).  With CONFIRM "1" the others are removed (image:D's object,
-- the "images" entry; an index leaves its children's parents) and each
-- makes a "delete" event per repository in the "events" stream, as a
-- client's delete does (no webhook: those are nginx's), unless
-- EVENTS_MAXLEN is 0.  Their manifests stay, untagged and in no
-- history, for the collector (`scripts/registry gc --untagged`).
-- Returns "ok", then one row per Image removed (or to remove): "D<tab>
-- R,R...".
-- KEYS: none (image:D, image:D:repos, image:D:parents, the streams'
-- :images, images, events).
-- ARGV: CONFIRM, CUTOFF, PROJECT ("" for all), EVENTS_MAXLEN, the
-- events' timestamp, source address, instance ID and ID prefix (a UUID
-- less its last 8 digits), the number of digests, the digests, then
-- DISCOUNT triples: R, D, entries.
local confirm, cutoff, project, maxlen = ARGV[1] == '1', ARGV[2], ARGV[3], tonumber(ARGV[4])
local ts, addr, instance, idp = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local nd = tonumber(ARGV[9])
local discount = {}
for i = 10 + nd, #ARGV, 3 do
    discount[ARGV[i] .. ' ' .. ARGV[i + 1]] = tonumber(ARGV[i + 2])
end

-- whether a history entry names d, or a kept index lists it, or it
-- refers to a kept image (depth: nested indexes are few)
local function kept(d, depth)
    for _, r in ipairs(redis.call('SMEMBERS', key.image_repos(d))) do
        local sk = key.imagestream(r)
        local c = tonumber(redis.call('HGET', key.imagestream_images(r), d) or '0')
        if c - (discount[r .. ' ' .. d] or 0) > 0 then return true end
        if redis.call('TYPE', sk).ok == 'string'
            and string.find(redis.call('GET', sk), d, 1, true) then
            return true
        end
    end
    if depth == 0 then return false end
    for _, x in ipairs(redis.call('SMEMBERS', key.image_parents(d))) do
        if redis.call('HEXISTS', key.image(x), 'object') == 1
            and kept(x, depth - 1) then
            return true
        end
    end
    local s = redis.call('HGET', key.image(d), 'subject')
    return s ~= false and kept(s, depth - 1)
end

local out, seq = {'ok'}, 0
for i = 10, 9 + nd do
    local d = ARGV[i]
    local obj = redis.call('HGET', key.image(d), 'object')
    local created = obj and string.match(obj, '"creationTimestamp":"([^"]*)"')
    local repos = redis.call('SMEMBERS', key.image_repos(d))
    local mine = obj ~= false and created ~= nil and created <= cutoff
    if project ~= '' then
        mine = mine and #repos > 0
        for _, r in ipairs(repos) do
            if string.sub(r, 1, #project + 1) ~= project .. '/' then
                mine = false
            end
        end
    end
    if mine and not kept(d, 3) then
        table.sort(repos)
        out[#out + 1] = d .. '\t' .. table.concat(repos, ',')
        if confirm then
            redis.call('HDEL', key.image(d), 'object')
            redis.call('ZREM', key.images(), d)
            if string.find(obj, '"dockerImageManifests":', 1, true) then
                for _, c in ipairs(cjson.decode(obj).dockerImageManifests or {}) do
                    redis.call('SREM', key.image_parents(c.digest), d)
                end
            end
            for _, r in ipairs(maxlen > 0 and repos or {}) do
                seq = seq + 1
                local env = '{"events":[{"id":"' .. idp .. string.format('%08x', seq)
                    .. '","timestamp":' .. is_encode(ts)
                    .. ',"action":"delete","target":{"digest":' .. is_encode(d)
                    .. ',"repository":' .. is_encode(r)
                    .. '},"request":{"id":"","addr":"","host":"","method":"DELETE",'
                    .. '"useragent":"scripts/registry prune images"},"actor":{},'
                    .. '"source":{"addr":' .. is_encode(addr)
                    .. ',"instanceID":' .. is_encode(instance) .. '}}]}'
                redis.call('XADD', key.events(), 'MAXLEN', maxlen, '*', 'action', 'delete',
                           'repository', r, 'digest', d, 'envelope', env)
            end
        end
    end
end
return out
