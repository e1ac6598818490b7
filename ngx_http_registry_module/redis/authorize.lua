-- The default authorizer's decision.  ARGV: the token's hex SHA-256
-- ("" for anonymous), the project, the action.  Returns {status, user,
-- projects (list only), the stored hash of the token}; the caller
-- compares that hash with its own in constant time.
local h, p, action = ARGV[1], ARGV[2], ARGV[3]
local user, sha = '', ''
if h ~= '' then
  local t = redis.call('HMGET', 'auth:token:' .. h, 'user', 'sha')
  if not t[1] or redis.call('SISMEMBER', 'auth:users', t[1]) == 0 then
    return {401, '', '', ''}
  end
  user, sha = t[1], t[2] or ''
end
local function cluster(role)
  return user ~= '' and redis.call('SISMEMBER', 'auth:clusterroles:' .. user, role) == 1
end
if action == 'none' then
  if user == '' then return {401, '', '', ''} end
  return {200, user, '', sha}
end
local grants = {
  ['registry-viewer'] = {pull = true},
  ['view'] = {pull = true},
  ['registry-editor'] = {pull = true, push = true},
  ['system:image-builder'] = {pull = true, push = true},
  ['edit'] = {pull = true, push = true},
  ['registry-admin'] = {pull = true, push = true, delete = true},
  ['admin'] = {pull = true, push = true, delete = true}
}
local function rights(proj, c)
  if user ~= '' then
    for _, role in ipairs(redis.call('SMEMBERS', 'auth:rb:' .. proj .. ':' .. user)) do
      for k in pairs(grants[role] or {}) do c[k] = true end
    end
  end
  if redis.call('HGET', 'auth:project:' .. proj, 'public') == '1' then
    c.pull = true
  end
  return c
end
local admin = cluster('cluster-admin')
if action == 'list' then
  if user == '' then return {401, '', '', ''} end
  if admin or cluster('system:registry') then
    return {200, user, '*', sha}
  end
  local out = {}
  for _, proj in ipairs(redis.call('SMEMBERS', 'auth:projects')) do
    if rights(proj, {}).pull then out[#out + 1] = proj end
  end
  table.sort(out)
  return {200, user, table.concat(out, ','), sha}
end
local c = {}
if admin then c = {pull = true, push = true, delete = true} end
if cluster('system:registry') then c.pull = true end
if cluster('system:image-pruner') then c.delete = true end
if redis.call('SISMEMBER', 'auth:projects', p) == 1 then
  rights(p, c)
elseif user ~= '' and (admin or cluster('self-provisioner')) then
  if action == 'push' then
    local now = redis.call('TIME')[1]
    redis.call('SADD', 'auth:projects', p)
    redis.call('HSET', 'auth:project:' .. p, 'public', '0', 'created', now, 'creator', user)
    redis.call('SADD', 'auth:rb:' .. p, user)
    redis.call('SADD', 'auth:rb:' .. p .. ':' .. user, 'registry-admin')
  end
  c.pull = true
  c.push = true
end
if c[action] then return {200, user, '', sha} end
if user == '' then return {401, '', '', ''} end
return {403, user, '', sha}
