-- flags: no-writes
-- GET .../imagestreamtags/N:T.  Returns {ImageStream, digest, Image or
-- ""}, the stream with only T in status.tags (T is absent when it has
-- no history: a tag older than image streams), or nil when the stream
-- or the tag is unknown.
-- KEYS: none (imagestream:R and its :tags, repo:R:tags, image:D).
-- ARGV: R, T.
local r, tag = ARGV[1], ARGV[2]
local sk = key.imagestream(r)
local t = redis.call('TYPE', sk).ok
if t ~= 'string' and t ~= 'hash' then return false end
local d = redis.call('HGET', key.repo_tags(r), tag)
if not d then return false end
local s
if t == 'string' then
    s = redis.call('GET', sk)
else
    local text = redis.call('HGET', key.imagestream_tags(r), tag)
    s = is_render(r, is_meta(sk), text and {text} or {})
end
return {s, d, redis.call('HGET', key.image(d), 'object') or ''}
