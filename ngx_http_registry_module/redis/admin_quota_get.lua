-- flags: no-writes
-- `scripts/registry quota get`: a project's use and limits.
-- KEYS: none (quota:P, project:P:imagestreams, project:P:storage).
-- ARGV: project.
-- Returns {"ok", image streams, their limit, storage (bytes), its limit,
-- image-size limit}, a limit "" when there is none.
local project = ARGV[1]

local q = redis.call('HMGET', key.quota(project), 'imagestreams', 'storage',
                     'image-size')
return {'ok', tostring(redis.call('ZCARD', key.project_imagestreams(project))),
        q[1] or '', redis.call('GET', key.project_storage(project)) or '0',
        q[2] or '', q[3] or ''}
