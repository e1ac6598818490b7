# shellcheck shell=bash
# Users, tokens, projects and roles of the registry, in OpenShift's words.
# Sourced by scripts/registry (after lib/common.sh), which dispatches
#
#   user add NAME                        create a user; prints a new token once
#   user delete NAME                     the user, its tokens and role bindings
#   token add NAME                       another token for an existing user
#   token revoke TOKEN|-|--user NAME     one token (- : read it from stdin),
#                                        or every token of a user
#   project add NAME [--public]          public: anyone may pull, anonymous too
#   project set NAME --public|--private
#   project delete NAME                  the project's roles (not its images)
#   policy add-role-to-user ROLE USER -n PROJECT
#   policy remove-role-from-user ROLE USER -n PROJECT
#   policy add-cluster-role-to-user ROLE USER
#   policy remove-cluster-role-from-user ROLE USER
#   get users | projects | rolebindings -n PROJECT | clusterrolebindings
#
# to admin_main, and calls admin_bootstrap on `up`.
#
# The data lives in the registry's Redis (layout: the top of
# ngx_http_registry_module/ngx_http_registry_auth.c). Tokens are stored
# only as their SHA-256; a new token is printed once, on stdout, and
# nowhere else. Changes apply to the next decision; decisions already
# cached by nginx last up to registry_auth_cache's valid= (10 s).
#
# Redis: 127.0.0.1:$REGISTRY_REDIS_PORT (6379), or the unix socket
# $REGISTRY_REDIS_SOCKET when set, or, when $REGISTRY_REDIS_SENTINELS
# lists sentinels ("IP:port ..."), the master the first of them that
# answers names for $REGISTRY_REDIS_MASTER (registry), asked at each
# command.  Its password, if any, in REDISCLI_AUTH (else
# REGISTRY_REDIS_PASSWORD; the sentinels' too), which redis-cli reads
# from its environment: never on the command line, where any local user
# sees it.

ADMIN_PROJECT_ROLES="registry-viewer registry-editor system:image-builder registry-admin view edit admin"
ADMIN_CLUSTER_ROLES="system:registry system:image-pruner self-provisioner cluster-admin"

admin_redis() {
    local s m=
    if [ -z "${REDISCLI_AUTH:-}" ] && [ -n "${REGISTRY_REDIS_PASSWORD:-}" ]; then
        export REDISCLI_AUTH=$REGISTRY_REDIS_PASSWORD
    fi
    if [ -n "${REGISTRY_REDIS_SENTINELS:-}" ]; then
        for s in $REGISTRY_REDIS_SENTINELS; do
            m=$(redis-cli -h "${s%:*}" -p "${s##*:}" sentinel get-master-addr-by-name \
                "${REGISTRY_REDIS_MASTER:-registry}" 2>/dev/null | tr '\n' ' ') || true
            case $m in [0-9]*' '[0-9]*' ') break ;; *) m= ;; esac
        done
        [ -n "$m" ] || { echo "no sentinel answers" >&2; return 1; }
        m=${m% }
        redis-cli -h "${m% *}" -p "${m#* }" "$@"
    elif [ -n "${REGISTRY_REDIS_SOCKET:-}" ]; then
        redis-cli -s "$REGISTRY_REDIS_SOCKET" "$@"
    else
        redis-cli -h 127.0.0.1 -p "${REGISTRY_REDIS_PORT:-6379}" "$@"
    fi
}

admin_connect() {
    local out where
    where=${REGISTRY_REDIS_SENTINELS:+the master named by the sentinels $REGISTRY_REDIS_SENTINELS}
    where=${where:-${REGISTRY_REDIS_SOCKET:-127.0.0.1:${REGISTRY_REDIS_PORT:-6379}}}
    command -v redis-cli >/dev/null || die "redis-cli is missing (scripts/registry up installs it)"
    out=$(admin_redis ping 2>&1) || true
    case $out in
        PONG) ;;
        *NOAUTH*|*WRONGPASS*|*AUTH*)
            die "Redis on $where refused the password (REDISCLI_AUTH or REGISTRY_REDIS_PASSWORD): ${out%%$'\n'*}" ;;
        *)
            die "Redis does not answer on $where (scripts/registry up): ${out%%$'\n'*}" ;;
    esac
}

# admin_eval SCRIPT ARG...: an atomic change; prints the script's answer
admin_eval() {
    local script=$1 out
    shift
    out=$(admin_redis --no-raw eval "$script" 0 "$@" 2>&1) || die "redis: $out"
    out=${out#\"}
    out=${out%\"}
    case $out in
        "(error)"*|ERR*) die "redis: $out" ;;
    esac
    printf '%s\n' "$out"
}

admin_check_user() {
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._@:-]{0,254}$ ]] \
        || die "invalid user name '$1' (letters, digits, . _ @ : -)"
}

# a project is the first component of <project>/<name>
admin_check_project() {
    [[ $1 =~ ^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$ ]] && [ ${#1} -le 200 ] \
        || die "invalid project name '$1' (lowercase letters and digits, separated by . _ __ or -)"
}

admin_check_role() {
    local role=$1 list=$2 r
    for r in $list; do [ "$r" = "$role" ] && return 0; done
    die "unknown role '$role' (one of: $list)"
}

# a new token: "sha256~" and 43 characters of base64url, like OpenShift's
admin_new_token() {
    printf 'sha256~%s' "$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')"
}

admin_hash() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# admin_issue USER [NEW]: store a new token of USER; print the token
admin_issue() {
    local user=$1 new=${2:-0} token hash out
    token=$(admin_new_token)
    hash=$(admin_hash "$token")
    out=$(admin_eval '
        local u, h, new = ARGV[1], ARGV[2], ARGV[3]
        local exists = redis.call("SISMEMBER", "auth:users", u) == 1
        if new == "1" and exists then return "exists" end
        if new ~= "1" and not exists then return "unknown" end
        local now = redis.call("TIME")[1]
        if new == "1" then
            redis.call("SADD", "auth:users", u)
            redis.call("HSET", "auth:user:" .. u, "created", now)
        end
        redis.call("HSET", "auth:token:" .. h, "user", u, "sha", h, "created", now)
        redis.call("SADD", "auth:user:" .. u .. ":tokens", h)
        return "ok"' "$user" "$hash" "$new")
    case $out in
        ok) printf '%s\n' "$token" ;;
        exists) die "user '$user' already exists (a new token: token add $user)" ;;
        unknown) die "no user '$user' (user add $user)" ;;
        *) die "unexpected answer from redis: $out" ;;
    esac
}

admin_user() {
    local sub=${1:-} name=${2:-} out
    [ -n "$name" ] || die "usage: user add|delete NAME"
    admin_check_user "$name"
    case $sub in
        add)
            admin_issue "$name" 1
            log "user '$name' created; its token is shown once, above" ;;
        delete)
            out=$(admin_eval '
                local u = ARGV[1]
                if redis.call("SREM", "auth:users", u) == 0 then return "unknown" end
                for _, h in ipairs(redis.call("SMEMBERS", "auth:user:" .. u .. ":tokens")) do
                    redis.call("DEL", "auth:token:" .. h)
                end
                for _, p in ipairs(redis.call("SMEMBERS", "auth:projects")) do
                    redis.call("DEL", "auth:rb:" .. p .. ":" .. u)
                    redis.call("SREM", "auth:rb:" .. p, u)
                end
                redis.call("DEL", "auth:user:" .. u, "auth:user:" .. u .. ":tokens",
                           "auth:clusterroles:" .. u)
                redis.call("SREM", "auth:clusterusers", u)
                return "ok"' "$name")
            [ "$out" = ok ] || die "no user '$name'"
            log "user '$name' deleted" ;;
        *) die "usage: user add|delete NAME" ;;
    esac
}

admin_token() {
    local sub=${1:-} arg=${2:-} out hash
    case $sub in
        add)
            [ -n "$arg" ] || die "usage: token add USER"
            admin_check_user "$arg"
            admin_issue "$arg" 0
            log "new token for '$arg'; shown once, above" ;;
        revoke)
            if [ "$arg" = --user ]; then
                [ -n "${3:-}" ] || die "usage: token revoke --user NAME"
                admin_check_user "$3"
                out=$(admin_eval '
                    local u = ARGV[1]
                    local n = 0
                    for _, h in ipairs(redis.call("SMEMBERS", "auth:user:" .. u .. ":tokens")) do
                        n = n + redis.call("DEL", "auth:token:" .. h)
                    end
                    redis.call("DEL", "auth:user:" .. u .. ":tokens")
                    return tostring(n)' "$3")
                log "revoked $out token(s) of '$3'"
                return
            fi
            if [ "$arg" = - ]; then
                IFS= read -r arg || true
            fi
            [ -n "$arg" ] || die "usage: token revoke TOKEN|-|--user NAME"
            hash=$(admin_hash "$arg")
            out=$(admin_eval '
                local h = ARGV[1]
                local u = redis.call("HGET", "auth:token:" .. h, "user")
                if not u then return "unknown" end
                redis.call("DEL", "auth:token:" .. h)
                redis.call("SREM", "auth:user:" .. u .. ":tokens", h)
                return "ok"' "$hash")
            [ "$out" = ok ] || die "no such token"
            log "token revoked" ;;
        *) die "usage: token add USER | token revoke TOKEN|-|--user NAME" ;;
    esac
}

admin_project() {
    local sub=${1:-} name=${2:-} flag=${3:-} public=0 out
    [ -n "$name" ] || die "usage: project add NAME [--public] | set NAME --public|--private | delete NAME"
    admin_check_project "$name"
    case $sub in
        add)
            case $flag in
                --public) public=1 ;;
                --private|'') ;;
                *) die "usage: project add NAME [--public]" ;;
            esac
            out=$(admin_eval '
                local p = ARGV[1]
                if redis.call("SADD", "auth:projects", p) == 0 then return "exists" end
                redis.call("HSET", "auth:project:" .. p, "public", ARGV[2],
                           "created", redis.call("TIME")[1], "creator", "admin")
                return "ok"' "$name" "$public")
            [ "$out" = ok ] || die "project '$name' already exists"
            log "project '$name' created$([ $public = 1 ] && echo ' (public)')" ;;
        set)
            case $flag in
                --public) public=1 ;;
                --private) public=0 ;;
                *) die "usage: project set NAME --public|--private" ;;
            esac
            out=$(admin_eval '
                if redis.call("SISMEMBER", "auth:projects", ARGV[1]) == 0 then return "unknown" end
                redis.call("HSET", "auth:project:" .. ARGV[1], "public", ARGV[2])
                return "ok"' "$name" "$public")
            [ "$out" = ok ] || die "no project '$name'"
            log "project '$name' is now $([ $public = 1 ] && echo public || echo private)" ;;
        delete)
            out=$(admin_eval '
                local p = ARGV[1]
                if redis.call("SREM", "auth:projects", p) == 0 then return "unknown" end
                for _, u in ipairs(redis.call("SMEMBERS", "auth:rb:" .. p)) do
                    redis.call("DEL", "auth:rb:" .. p .. ":" .. u)
                end
                redis.call("DEL", "auth:rb:" .. p, "auth:project:" .. p)
                return "ok"' "$name")
            [ "$out" = ok ] || die "no project '$name'"
            log "project '$name' deleted (its images stay in the registry)" ;;
        *) die "usage: project add|set|delete NAME ..." ;;
    esac
}

admin_policy() {
    local sub=${1:-} role=${2:-} user=${3:-} project='' out
    shift 3 2>/dev/null || die "usage: policy add-role-to-user ROLE USER -n PROJECT (see scripts/registry help)"
    while [ $# -gt 0 ]; do
        case $1 in
            -n|--namespace) project=${2:-}; shift 2 || true ;;
            -n?*) project=${1#-n}; shift ;;
            --namespace=*) project=${1#*=}; shift ;;
            *) die "unexpected argument '$1'" ;;
        esac
    done
    admin_check_user "$user"
    case $sub in
        add-role-to-user|remove-role-from-user)
            [ -n "$project" ] || die "$sub needs -n PROJECT"
            admin_check_project "$project"
            admin_check_role "$role" "$ADMIN_PROJECT_ROLES"
            out=$(admin_eval '
                local op, role, u, p = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
                if redis.call("SISMEMBER", "auth:projects", p) == 0 then return "no project" end
                if op == "add-role-to-user" then
                    if redis.call("SISMEMBER", "auth:users", u) == 0 then return "no user" end
                    redis.call("SADD", "auth:rb:" .. p .. ":" .. u, role)
                    redis.call("SADD", "auth:rb:" .. p, u)
                    return "ok"
                end
                if redis.call("SREM", "auth:rb:" .. p .. ":" .. u, role) == 0 then return "not bound" end
                if redis.call("SCARD", "auth:rb:" .. p .. ":" .. u) == 0 then
                    redis.call("SREM", "auth:rb:" .. p, u)
                end
                return "ok"' "$sub" "$role" "$user" "$project")
            case $out in
                ok) ;;
                "no project") die "no project '$project' (project add $project)" ;;
                "no user") die "no user '$user' (user add $user)" ;;
                "not bound") die "'$user' has no role '$role' in '$project'" ;;
                *) die "unexpected answer from redis: $out" ;;
            esac
            if [ "$sub" = add-role-to-user ]; then
                log "role '$role' added: '$user' in project '$project'"
            else
                log "role '$role' removed: '$user' in project '$project'"
            fi ;;
        add-cluster-role-to-user|remove-cluster-role-from-user)
            [ -z "$project" ] || die "cluster roles have no project (-n)"
            admin_check_role "$role" "$ADMIN_CLUSTER_ROLES"
            out=$(admin_eval '
                local op, role, u = ARGV[1], ARGV[2], ARGV[3]
                if op == "add-cluster-role-to-user" then
                    if redis.call("SISMEMBER", "auth:users", u) == 0 then return "no user" end
                    redis.call("SADD", "auth:clusterroles:" .. u, role)
                    redis.call("SADD", "auth:clusterusers", u)
                    return "ok"
                end
                if redis.call("SREM", "auth:clusterroles:" .. u, role) == 0 then return "not bound" end
                if redis.call("SCARD", "auth:clusterroles:" .. u) == 0 then
                    redis.call("SREM", "auth:clusterusers", u)
                end
                return "ok"' "$sub" "$role" "$user")
            case $out in
                ok) ;;
                "no user") die "no user '$user' (user add $user)" ;;
                "not bound") die "'$user' has no cluster role '$role'" ;;
                *) die "unexpected answer from redis: $out" ;;
            esac
            log "cluster role '$role' $([ "$sub" = add-cluster-role-to-user ] && echo added to || echo removed from) '$user'" ;;
        *) die "usage: policy add-role-to-user|remove-role-from-user ROLE USER -n PROJECT | add-cluster-role-to-user|remove-cluster-role-from-user ROLE USER" ;;
    esac
}

# tables: one line a row, columns separated by tabs, aligned by column(1);
# redis-cli --raw ends an array's last line without a newline: add it
admin_table() { sed -e '$a\' | column -t -s $'\t'; }

admin_get() {
    local what=${1:-} project=''
    shift || true
    while [ $# -gt 0 ]; do
        case $1 in
            -n|--namespace) project=${2:-}; shift 2 || true ;;
            -n?*) project=${1#-n}; shift ;;
            *) die "unexpected argument '$1'" ;;
        esac
    done
    case $what in
        users|user)
            {
                printf 'NAME\tTOKENS\tCLUSTER ROLES\n'
                admin_redis --raw eval '
                    local out = {}
                    local users = redis.call("SMEMBERS", "auth:users")
                    table.sort(users)
                    for _, u in ipairs(users) do
                        local roles = redis.call("SMEMBERS", "auth:clusterroles:" .. u)
                        table.sort(roles)
                        local r = table.concat(roles, ",")
                        if r == "" then r = "<none>" end
                        out[#out + 1] = u .. "\t" ..
                            redis.call("SCARD", "auth:user:" .. u .. ":tokens") .. "\t" .. r
                    end
                    return out' 0
            } | admin_table ;;
        projects|project)
            {
                printf 'NAME\tPUBLIC\tCREATOR\n'
                admin_redis --raw eval '
                    local out = {}
                    local ps = redis.call("SMEMBERS", "auth:projects")
                    table.sort(ps)
                    for _, p in ipairs(ps) do
                        local h = redis.call("HMGET", "auth:project:" .. p, "public", "creator")
                        out[#out + 1] = p .. "\t" .. (h[1] == "1" and "true" or "false")
                            .. "\t" .. (h[2] or "")
                    end
                    return out' 0
            } | admin_table ;;
        rolebindings|rolebinding)
            [ -n "$project" ] || die "get rolebindings needs -n PROJECT"
            admin_check_project "$project"
            [ "$(admin_redis sismember auth:projects "$project")" = 1 ] || die "no project '$project'"
            {
                printf 'ROLE\tUSER\n'
                admin_redis --raw eval '
                    local out = {}
                    for _, u in ipairs(redis.call("SMEMBERS", "auth:rb:" .. ARGV[1])) do
                        for _, r in ipairs(redis.call("SMEMBERS", "auth:rb:" .. ARGV[1] .. ":" .. u)) do
                            out[#out + 1] = r .. "\t" .. u
                        end
                    end
                    table.sort(out)
                    return out' 0 "$project"
            } | admin_table ;;
        clusterrolebindings|clusterrolebinding)
            {
                printf 'ROLE\tUSER\n'
                admin_redis --raw eval '
                    local out = {}
                    for _, u in ipairs(redis.call("SMEMBERS", "auth:clusterusers")) do
                        for _, r in ipairs(redis.call("SMEMBERS", "auth:clusterroles:" .. u)) do
                            out[#out + 1] = r .. "\t" .. u
                        end
                    end
                    table.sort(out)
                    return out' 0
            } | admin_table ;;
        *)
            # other resources (imagestreams, ...) belong to scripts/registry
            if declare -F cmd_get >/dev/null; then
                cmd_get "$what" ${project:+-n "$project"}
            else
                die "usage: get users|projects|rolebindings -n PROJECT|clusterrolebindings"
            fi ;;
    esac
}

# The first `up`: an admin user holding cluster-admin, its token printed
# once and kept in var/admin-token (mode 600). Later runs do nothing,
# unless Redis lost the user (then a new admin and token are made).
admin_bootstrap() {
    local f=$TOP/var/admin-token token
    admin_connect
    if [ "$(admin_redis sismember auth:users admin)" = 1 ]; then
        [ -s "$f" ] || log "user 'admin' exists; a new token: scripts/registry token add admin"
        return 0
    fi
    token=$(admin_issue admin 1)
    admin_eval '
        redis.call("SADD", "auth:clusterroles:admin", "cluster-admin")
        redis.call("SADD", "auth:clusterusers", "admin")
        return "ok"' >/dev/null
    mkdir -p "$TOP/var"
    ( umask 077; printf '%s\n' "$token" > "$f.new" ) && mv "$f.new" "$f"
    chmod 600 "$f"
    log "created user 'admin' (cluster-admin); its token, shown once, is also in $f:"
    printf '%s\n' "$token"
}

admin_usage() {
    sed -n '/^#   user add/,/^#   get users/p' "$TOP/scripts/lib/admin.sh" | sed 's/^#//' >&2
    exit 2
}

# admin_main COMMAND ARGS...: user, token, project, policy, get
admin_main() {
    local cmd=${1:-}
    shift || true
    case $cmd in
        user|token|project|policy|get) ;;
        *) admin_usage ;;
    esac
    [ $# -gt 0 ] || admin_usage
    admin_connect
    "admin_$cmd" "$@"
}
