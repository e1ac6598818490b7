-- flags: no-writes
-- A watch from a resourceVersion.  Every resourceVersion given is one
-- entry of the log, so the log holds every change after the version
-- unless its first entry is further on: then returns "gone".  Else
-- returns the resourceVersion read up to, "1" when more follows (the
-- events reached the budget) or "0", then the ID and the event of each
-- change of the project after the version.  The budget bounds what one
-- reply holds: a watcher behind catches up in steps, at the pace it
-- reads.  An event weighs one tag's history at most (is_save), so a
-- step holds many.
-- KEYS: none (imagestreams:rv, imagestreams:log).  ARGV: project,
-- resourceVersion, the budget in bytes.
local p = ARGV[1]
local from, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = tonumber(redis.call('GET', key.imagestreams_rv()) or '0')
local first = redis.call('XRANGE', key.imagestreams_log(), '-', '+', 'COUNT', 1)[1]
first = first and tonumber(string.match(first[1], '^%d+')) or now + 1
if from + 1 < first and from < now then return 'gone' end
local out, bytes, start = {tostring(now), '0'}, 0, (from + 1) .. '-0'
while true do
    local batch = redis.call('XRANGE', key.imagestreams_log(), start, '+', 'COUNT', 64)
    for _, e in ipairs(batch) do
        local id = string.match(e[1], '^%d+')
        if bytes >= budget then
            out[1], out[2] = tostring(tonumber(id) - 1), '1'
            return out
        end
        if e[2][2] == p then
            out[#out + 1] = id
            out[#out + 1] = e[2][4]
            bytes = bytes + #e[2][4]
        end
    end
    if #batch < 64 then return out end
    start = '(' .. batch[#batch][1]
end
