-- `scripts/registry quota delete`: every limit of a project.
-- KEYS: none (quota:P).
-- ARGV: project.
-- Returns {"ok"}.
redis.call('DEL', key.quota(ARGV[1]))
return {'ok'}
