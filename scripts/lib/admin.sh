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
# The data lives in the registry's Redis, read and changed only by the
# admin_* functions of the registry's function library
# (ngx_http_registry_module/redis/, keys in KEYS.md): no key name is
# spelled here. Tokens are stored only as their SHA-256; a new token is
# printed once, on stdout, and nowhere else. Changes apply to the next decision; decisions already
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

# admin_load: the function library, into a Redis that lacks it (no nginx
# has connected yet, or it was flushed): the text the module embeds
admin_load() {
    local out
    out=$(sh "$TOP/ngx_http_registry_module/redis/library" \
          | admin_redis -x function load replace 2>&1) || die "redis: $out"
    [ "$out" = registry ] || die "redis: cannot load the function library: ${out%%$'\n'*}"
}

# admin_call NAME ARG...: the library's function NAME
# (ngx_http_registry_module/redis/NAME.lua), loaded first if Redis lacks
# it; prints its answer, one element a line: a lowercase status first
# ("ok", "unknown", ...), then any rows.  A Redis error (uppercase) dies.
admin_call() {
    local out
    out=$(admin_redis --raw fcall "$1" 0 "${@:2}" 2>&1) || die "redis: $out"
    case $out in
        "ERR Function not found"*)
            admin_load
            out=$(admin_redis --raw fcall "$1" 0 "${@:2}" 2>&1) || die "redis: $out" ;;
    esac
    case ${out%%$'\n'*} in
        [a-z]*) printf '%s\n' "$out" ;;
        *) die "redis: ${out%%$'\n'*}" ;;
    esac
}

# admin_rows NAME ARG...: the rows of a listing (after its status "ok")
admin_rows() {
    local out
    out=$(admin_call "$@")
    [ "${out%%$'\n'*}" = ok ] || die "unexpected answer from redis: $out"
    case $out in
        *$'\n'*) printf '%s\n' "${out#*$'\n'}" ;;
    esac
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
    out=$(admin_call admin_token_add "$user" "$hash" "$new")
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
            out=$(admin_call admin_user_delete "$name")
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
                out=$(admin_rows admin_token_revoke_user "$3")
                log "revoked $out token(s) of '$3'"
                return
            fi
            if [ "$arg" = - ]; then
                IFS= read -r arg || true
            fi
            [ -n "$arg" ] || die "usage: token revoke TOKEN|-|--user NAME"
            hash=$(admin_hash "$arg")
            out=$(admin_call admin_token_revoke "$hash")
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
            out=$(admin_call admin_project_add "$name" "$public")
            [ "$out" = ok ] || die "project '$name' already exists"
            log "project '$name' created$([ $public = 1 ] && echo ' (public)')" ;;
        set)
            case $flag in
                --public) public=1 ;;
                --private) public=0 ;;
                *) die "usage: project set NAME --public|--private" ;;
            esac
            out=$(admin_call admin_project_set "$name" "$public")
            [ "$out" = ok ] || die "no project '$name'"
            log "project '$name' is now $([ $public = 1 ] && echo public || echo private)" ;;
        delete)
            out=$(admin_call admin_project_delete "$name")
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
            out=$(admin_call admin_role "${sub%%-*}" "$role" "$user" "$project")
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
            out=$(admin_call admin_clusterrole "${sub%%-*}" "$role" "$user")
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
                admin_rows admin_users
            } | admin_table ;;
        projects|project)
            {
                printf 'NAME\tPUBLIC\tCREATOR\n'
                admin_rows admin_projects
            } | admin_table ;;
        rolebindings|rolebinding)
            [ -n "$project" ] || die "get rolebindings needs -n PROJECT"
            admin_check_project "$project"
            out=$(admin_call admin_rolebindings "$project")
            [ "${out%%$'\n'*}" = ok ] || die "no project '$project'"
            {
                printf 'ROLE\tUSER\n'
                case $out in *$'\n'*) printf '%s\n' "${out#*$'\n'}" ;; esac
            } | admin_table ;;
        clusterrolebindings|clusterrolebinding)
            {
                printf 'ROLE\tUSER\n'
                admin_rows admin_clusterrolebindings
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
    local f=$TOP/var/admin-token token out
    admin_connect
    token=$(admin_new_token)
    out=$(admin_call admin_token_add admin "$(admin_hash "$token")" 1)
    case $out in
        ok) ;;
        exists)
            [ -s "$f" ] || log "user 'admin' exists; a new token: scripts/registry token add admin"
            return 0 ;;
        *) die "unexpected answer from redis: $out" ;;
    esac
    out=$(admin_call admin_clusterrole add cluster-admin admin)
    [ "$out" = ok ] || die "unexpected answer from redis: $out"
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
