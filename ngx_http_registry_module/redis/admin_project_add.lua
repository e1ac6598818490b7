-- A new project P, public (anyone may pull) or private; made by "admin"
-- (a push of a self-provisioner makes one too: see authorize).
-- KEYS: none (see lib.lua).
-- ARGV: P, public ("1" or "0").
-- Returns "ok", or "exists".
local project, public = ARGV[1], ARGV[2]

if redis.call('SADD', key.projects(), project) == 0 then return 'exists' end
redis.call('HSET', key.project(project), 'public', public,
           'created', redis.call('TIME')[1], 'creator', 'admin')
return 'ok'
