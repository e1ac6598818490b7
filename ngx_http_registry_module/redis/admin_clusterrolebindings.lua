-- flags: no-writes
-- The cluster role bindings (scripts/registry get clusterrolebindings).
-- KEYS: none (see lib.lua).
-- ARGV: none.
-- Returns {"ok", "ROLE\tUSER" of each binding, sorted}.
return role_rows(key.clusterusers(), key.clusterroles)
