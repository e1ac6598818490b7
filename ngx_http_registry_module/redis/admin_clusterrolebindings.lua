-- flags: no-writes
-- The cluster role bindings (scripts/registry get clusterrolebindings).
-- KEYS: none (see lib.lua).
-- ARGV: none.
-- Returns {"ok", "ROLE\tUSER" of each binding, sorted}.
local out = {}
for _, u in ipairs(redis.call('SMEMBERS', key.clusterusers())) do
    for _, r in ipairs(redis.call('SMEMBERS', key.clusterroles(u))) do
        out[#out + 1] = r .. '\t' .. u
    end
end
table.sort(out)
table.insert(out, 1, 'ok')
return out
