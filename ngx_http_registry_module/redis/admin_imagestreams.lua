-- flags: no-writes
-- `scripts/registry get imagestreams [-n P]`: "ok", then one row per
-- stream, "[P<tab>]N<tab>repository<tab>the first 4 tags<tab>the newest
-- head's created", P when every project is listed.
-- KEYS: none (project:P:imagestreams, each stream's parts; SCAN for the
-- projects).  ARGV: P, or "" for every project.
local project = ARGV[1]
local projects, seen = {}, {}
if project ~= '' then
    projects = {project}
else
    local cursor = '0'
    repeat
        local r = redis.call('SCAN', cursor, 'MATCH', key.project_imagestreams('*'),
                             'COUNT', 1000)
        cursor = r[1]
        -- P of each key: the pattern around '*'
        local head, tail = string.match(key.project_imagestreams('*'), '^(.*)%*(.*)$')
        for _, k in ipairs(r[2]) do
            seen[string.sub(k, #head + 1, -#tail - 1)] = true
        end
    until cursor == '0'
    for p in pairs(seen) do projects[#projects + 1] = p end
    table.sort(projects)
end
local out = {'ok'}
for _, p in ipairs(projects) do
    for _, n in ipairs(redis.call('ZRANGE', key.project_imagestreams(p), 0, -1)) do
        local r = p .. '/' .. n
        local sk = key.imagestream(r)
        local ref
        if redis.call('TYPE', sk).ok == 'string' then
            ref = cjson.decode(redis.call('GET', sk)).status.dockerImageRepository
        else
            ref = redis.call('HGET', sk, 'ref')
        end
        if ref then
            local tags, updated = {}, ''
            for _, text in ipairs(is_tag_texts(r)) do
                -- the first "created" of a history is its head's
                tags[#tags + 1] = string.match(text, '"tag":"([^"]*)"')
                local c = string.match(text, '"created":"([^"]*)"') or ''
                if c > updated then updated = c end
            end
            local shown = table.concat(tags, ',', 1, math.min(#tags, 4))
            if #tags > 4 then
                shown = shown .. ' + ' .. (#tags - 4) .. ' more...'
            end
            local row = n .. '\t' .. ref .. '\t' .. shown .. '\t' .. updated
            if project == '' then row = p .. '\t' .. row end
            out[#out + 1] = row
        end
    end
end
return out
