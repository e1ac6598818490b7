-- flags: no-writes
-- `scripts/registry describe imagestream N -n P`: rows for the shell to
-- lay out, "KIND<tab>fields": H a header line, T a header with a time,
-- G a tag, I one entry of its history ("*" for the head, reference,
-- created, pusher), after "ok"; "unknown" when there is no such stream.
-- KEYS: none (the stream's parts).  ARGV: P, N.
local p, n = ARGV[1], ARGV[2]
local r = p .. '/' .. n
local sk = key.imagestream(r)
local t = redis.call('TYPE', sk).ok
local meta
if t == 'string' then
    local o = cjson.decode(redis.call('GET', sk))
    meta = {created = o.metadata.creationTimestamp,
            ref = o.status.dockerImageRepository}
elseif t == 'hash' then
    meta = is_meta(sk)
else
    return {'unknown'}
end
local tags, unique, count = {}, {}, 0
for _, text in ipairs(is_tag_texts(r)) do
    local x = cjson.decode(text)
    tags[#tags + 1] = x
    for _, i in ipairs(x.items) do
        if not unique[i.image] then
            unique[i.image] = true
            count = count + 1
        end
    end
end
local out = {'ok'}
local function add(...) out[#out + 1] = table.concat({...}, '\t') end
add('H', 'Name:', n)
add('H', 'Namespace:', p)
add('T', 'Created:', meta.created)
add('H', 'Labels:', '<none>')
add('H', 'Annotations:', '<none>')
add('H', 'Image Repository:', meta.ref)
add('H', 'Image Lookup:', 'local=false')
add('H', 'Unique Images:', tostring(count))
add('H', 'Tags:', tostring(#tags))
for _, x in ipairs(tags) do
    add('G', x.tag)
    for k, i in ipairs(x.items) do
        add('I', k == 1 and '*' or ' ', i.dockerImageReference, i.created,
            i.pushedBy or '')
    end
end
return out
