# Image streams and images, in the words and layout of `oc`. Sourced by
# scripts/registry after lib/admin.sh: admin_get hands the resources it
# does not know to cmd_get, and `describe` comes to cmd_describe.
#
#   get imagestreams -n PROJECT          NAME, IMAGE REPOSITORY, TAGS, UPDATED
#   get imagestreams                     the same for every project
#   get images                           NAME (digest), IMAGE REFERENCE
#   describe imagestream NAME -n PROJECT the stream, each tag with its
#                                        history, newest first
#
# Everything is read from the registry's Redis (the layout is at the top
# of ngx_http_registry_module/ngx_http_registry.h), like the admin
# commands: no token needed, and the same Redis settings
# (REGISTRY_REDIS_PORT, REGISTRY_REDIS_SOCKET).
#
# To follow the events as they happen (see README.md):
#   redis-cli -p 6379 XREAD BLOCK 0 STREAMS events '$'

# "5 minutes ago" for an RFC 3339 time, as oc prints ages
images_ago() {
    local then now d
    then=$(date -u -d "$1" +%s 2>/dev/null) || { printf '%s' "$1"; return; }
    now=$(date -u +%s)
    d=$((now - then))
    if [ $d -lt 0 ]; then d=0; fi
    if [ $d -lt 60 ]; then printf '%d seconds ago' $d
    elif [ $d -lt 3600 ]; then printf '%d minutes ago' $((d / 60))
    elif [ $d -lt 172800 ]; then printf '%d hours ago' $((d / 3600))
    else printf '%d days ago' $((d / 86400)); fi
}

# reads tab-separated lines; the column named by $1 (1-based) is a time
images_ages() {
    local col=$1 line out i
    local -a f
    while IFS= read -r line; do
        IFS=$'\t' read -r -a f <<< "$line"
        if [ "${f[col - 1]:-}" != "" ] && [[ ${f[col - 1]} =~ ^[0-9]{4}- ]]; then
            f[col - 1]=$(images_ago "${f[col - 1]}")
        fi
        out=''
        for i in "${!f[@]}"; do
            out+="${f[i]}"$'\t'
        done
        printf '%s\n' "${out%$'\t'}"
    done
}

images_get_streams() {
    local project=$1
    {
        if [ -n "$project" ]; then
            printf 'NAME\tIMAGE REPOSITORY\tTAGS\tUPDATED\n'
        else
            printf 'NAMESPACE\tNAME\tIMAGE REPOSITORY\tTAGS\tUPDATED\n'
        fi
        admin_redis --raw eval '
            local projects, seen = {}, {}
            if ARGV[1] ~= "" then
                projects = {ARGV[1]}
            else
                local cursor = "0"
                repeat
                    local r = redis.call("SCAN", cursor, "MATCH", "project:*:imagestreams", "COUNT", 1000)
                    cursor = r[1]
                    for _, k in ipairs(r[2]) do
                        seen[string.sub(k, 9, -14)] = true
                    end
                until cursor == "0"
                for p in pairs(seen) do projects[#projects + 1] = p end
                table.sort(projects)
            end
            local out = {}
            for _, p in ipairs(projects) do
                for _, n in ipairs(redis.call("ZRANGE", "project:" .. p .. ":imagestreams", 0, -1)) do
                    local s = redis.call("GET", "imagestream:" .. p .. "/" .. n)
                    if s then
                        local o = cjson.decode(s)
                        local tags, updated = {}, ""
                        for _, t in ipairs(o.status.tags or {}) do
                            tags[#tags + 1] = t.tag
                            local c = t.items[1] and t.items[1].created or ""
                            if c > updated then updated = c end
                        end
                        local shown = table.concat(tags, ",", 1, math.min(#tags, 4))
                        if #tags > 4 then shown = shown .. " + " .. (#tags - 4) .. " more..." end
                        local row = n .. "\t" .. o.status.dockerImageRepository .. "\t"
                            .. shown .. "\t" .. updated
                        if ARGV[1] == "" then row = p .. "\t" .. row end
                        out[#out + 1] = row
                    end
                end
            end
            return out' 0 "$project" | images_ages $([ -n "$project" ] && echo 4 || echo 5)
    } | admin_table
}

images_get_images() {
    {
        printf 'NAME\tIMAGE REFERENCE\n'
        admin_redis --raw eval '
            local out = {}
            for _, d in ipairs(redis.call("ZRANGE", "images", 0, -1)) do
                local o = redis.call("HGET", "image:" .. d, "object")
                if o then
                    out[#out + 1] = d .. "\t" .. cjson.decode(o).dockerImageReference
                end
            end
            return out' 0
    } | admin_table
}

images_describe_stream() {
    local name=$1 project=$2 out line kind a b c d
    [ -n "$name" ] || die "usage: describe imagestream NAME -n PROJECT"
    [ -n "$project" ] || die "describe imagestream needs -n PROJECT"
    admin_check_project "$project"
    [[ $name =~ ^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$ ]] || die "invalid image stream name '$name'"
    out=$(admin_redis --raw eval '
        local s = redis.call("GET", "imagestream:" .. ARGV[1] .. "/" .. ARGV[2])
        if not s then return {} end
        local o = cjson.decode(s)
        local out, unique = {}, {}
        local n = 0
        for _, t in ipairs(o.status.tags or {}) do
            for _, i in ipairs(t.items) do
                if not unique[i.image] then unique[i.image] = true; n = n + 1 end
            end
        end
        local function add(...) out[#out + 1] = table.concat({...}, "\t") end
        add("H", "Name:", o.metadata.name)
        add("H", "Namespace:", o.metadata.namespace)
        add("T", "Created:", o.metadata.creationTimestamp)
        add("H", "Labels:", "<none>")
        add("H", "Annotations:", "<none>")
        add("H", "Image Repository:", o.status.dockerImageRepository)
        add("H", "Image Lookup:", "local=false")
        add("H", "Unique Images:", tostring(n))
        add("H", "Tags:", tostring(#(o.status.tags or {})))
        for _, t in ipairs(o.status.tags or {}) do
            add("G", t.tag)
            for k, i in ipairs(t.items) do
                add("I", k == 1 and "*" or " ", i.dockerImageReference, i.created,
                    i.pushedBy or "")
            end
        end
        return out' 0 "$project" "$name")
    [ -n "$out" ] || die "imagestream \"$name\" not found in project \"$project\""
    while IFS=$'\t' read -r kind a b c d; do
        case $kind in
            H) printf '%-24s%s\n' "$a" "$b" ;;
            T) printf '%-24s%s\n' "$a" "$(images_ago "$b")" ;;
            G) printf '\n%s\n\n' "$a" ;;
            I)
                printf '  %s %s\n' "$a" "$b"
                if [ -n "$d" ]; then
                    printf '      %s by %s\n' "$(images_ago "$c")" "$d"
                else
                    printf '      %s\n' "$(images_ago "$c")"
                fi ;;
        esac
    done <<< "$out"
}

# cmd_get RESOURCE [-n PROJECT]: from admin_get
cmd_get() {
    local what=${1:-} project=''
    shift || true
    while [ $# -gt 0 ]; do
        case $1 in
            -n|--namespace) project=${2:-}; shift 2 || true ;;
            *) die "unexpected argument '$1'" ;;
        esac
    done
    [ -z "$project" ] || admin_check_project "$project"
    case $what in
        imagestreams|imagestream|is) images_get_streams "$project" ;;
        images|image) images_get_images ;;
        *) die "usage: get users|projects|rolebindings -n PROJECT|clusterrolebindings|imagestreams [-n PROJECT]|images" ;;
    esac
}

# cmd_describe imagestream NAME -n PROJECT
cmd_describe() {
    local what=${1:-} name='' project=''
    shift || true
    while [ $# -gt 0 ]; do
        case $1 in
            -n|--namespace) project=${2:-}; shift 2 || true ;;
            -n?*) project=${1#-n}; shift ;;
            -*) die "unexpected argument '$1'" ;;
            *) [ -z "$name" ] || die "unexpected argument '$1'"; name=$1; shift ;;
        esac
    done
    case $what in
        imagestream|imagestreams|is) admin_connect; images_describe_stream "$name" "$project" ;;
        *) die "usage: describe imagestream NAME -n PROJECT" ;;
    esac
}
