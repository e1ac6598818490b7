-- The default authorizer's decision: may the token's user (anonymous
-- without a token) do action in project P.  A push to a project nobody
-- made makes it, when the user may provision projects.
-- KEYS: auth:users, auth:projects, auth:project:P, auth:rb:P[,
-- auth:token:H (H: the token's hex SHA-256; none for anonymous)].
-- ARGV: P ("" for the actions list and none), the action: pull, push,
-- delete, list (the projects the user may pull from) or none (only who
-- the user is).
-- Returns {status, user, projects (list only: "p1,p2", "*" for all),
-- the stored hash of the token}; the caller compares that hash with its
-- own in constant time.
local users, projects, project, members, token =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local p, action = ARGV[1], ARGV[2]

local user, sha = '', ''
if token then
    local t = redis.call('HMGET', token, 'user', 'sha')
    if not t[1] or redis.call('SISMEMBER', users, t[1]) == 0 then
        return {401, '', '', ''}
    end
    user, sha = t[1], t[2] or ''
end
local function cluster(role)
    return user ~= ''
        and redis.call('SISMEMBER', key.clusterroles(user), role) == 1
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
        for _, role in ipairs(redis.call('SMEMBERS', key.roles(proj, user))) do
            for k in pairs(grants[role] or {}) do c[k] = true end
        end
    end
    if redis.call('HGET', key.project(proj), 'public') == '1' then
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
    for _, proj in ipairs(redis.call('SMEMBERS', projects)) do
        if rights(proj, {}).pull then out[#out + 1] = proj end
    end
    table.sort(out)
    return {200, user, table.concat(out, ','), sha}
end
local c = {}
if admin then c = {pull = true, push = true, delete = true} end
if cluster('system:registry') then c.pull = true end
if cluster('system:image-pruner') then c.delete = true end
if redis.call('SISMEMBER', projects, p) == 1 then
    rights(p, c)
elseif user ~= '' and (admin or cluster('self-provisioner')) then
    if action == 'push' then
        local now = redis.call('TIME')[1]
        redis.call('SADD', projects, p)
        redis.call('HSET', project, 'public', '0', 'created', now,
                   'creator', user)
        redis.call('SADD', members, user)
        redis.call('SADD', key.roles(p, user), 'registry-admin')
    end
    c.pull = true
    c.push = true
end
if c[action] then return {200, user, '', sha} end
if user == '' then return {401, '', '', ''} end
return {403, user, '', sha}
