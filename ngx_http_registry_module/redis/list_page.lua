-- flags: no-writes
-- KEYS[1]: the zset.  ARGV: the repository that must be in "repos" (""
-- for none), last ("" for none), how many to return ("" for all), the
-- projects whose names may be returned ("p1,p2", "" for none, "*" for
-- all).  Returns the names, or nil when the repository is unknown.
--
-- A project's names are the range ["P/", "P0") ('0' follows '/'); the
-- ranges are merged in bytes' order, ZRANGEBYLEX's ("a-b/x" comes before
-- "a/x": Lua's own "<" follows the locale).
if ARGV[1] ~= '' and not redis.call('ZSCORE', 'repos', ARGV[1]) then
  return false
end
local min = '-'
if ARGV[2] ~= '' then min = '(' .. ARGV[2] end
local function range(lo, hi)
  if ARGV[3] == '' then
    return redis.call('ZRANGEBYLEX', KEYS[1], lo, hi)
  end
  return redis.call('ZRANGEBYLEX', KEYS[1], lo, hi, 'LIMIT', 0, ARGV[3])
end
if ARGV[4] == '*' then return range(min, '+') end
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local out, seen = {}, {}
for p in string.gmatch(ARGV[4], '[^,]+') do
  if not seen[p] then
    seen[p] = true
    local lo = '[' .. p .. '/'
    if ARGV[2] ~= '' and before(p .. '/', ARGV[2]) then lo = min end
    for _, name in ipairs(range(lo, '(' .. p .. '0')) do
      out[#out + 1] = name
    end
  end
end
table.sort(out, before)
if ARGV[3] ~= '' then
  for i = #out, tonumber(ARGV[3]) + 1, -1 do out[i] = nil end
end
return out
