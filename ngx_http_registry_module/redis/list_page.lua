-- flags: no-writes
-- A page of names from a zset sorted by name (a repository's tags, the
-- catalog), only those of the projects the caller may see.
-- KEYS: the zset, repos.
-- ARGV: the repository that must be in repos ("" for none), last ("" for
-- none), how many to return ("" for all), the projects whose names may
-- be returned ("p1,p2", "" for none, "*" for all).
-- Returns the names, or nil when the repository is unknown.
--
-- A project's names are the range ["P/", "P0") ('0' follows '/'); the
-- ranges are merged in bytes' order, ZRANGEBYLEX's ("a-b/x" comes before
-- "a/x": Lua's own "<" follows the locale).
local zset, repos = KEYS[1], KEYS[2]
local repo, last, n, projects = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if repo ~= '' and not redis.call('ZSCORE', repos, repo) then
    return false
end
local min = '-'
if last ~= '' then min = '(' .. last end
local function range(lo, hi)
    if n == '' then
        return redis.call('ZRANGEBYLEX', zset, lo, hi)
    end
    return redis.call('ZRANGEBYLEX', zset, lo, hi, 'LIMIT', 0, n)
end
if projects == '*' then return range(min, '+') end
local function before(a, b)
    for i = 1, math.min(#a, #b) do
        local x, y = a:byte(i), b:byte(i)
        if x ~= y then return x < y end
    end
    return #a < #b
end
local out, seen = {}, {}
for p in string.gmatch(projects, '[^,]+') do
    if not seen[p] then
        seen[p] = true
        local lo = '[' .. p .. '/'
        if last ~= '' and before(p .. '/', last) then lo = min end
        for _, name in ipairs(range(lo, '(' .. p .. '0')) do
            out[#out + 1] = name
        end
    end
end
table.sort(out, before)
if n ~= '' then
    for i = #out, tonumber(n) + 1, -1 do out[i] = nil end
end
return out
