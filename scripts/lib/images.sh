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
# of ngx_http_registry_module/ngx_http_registry.h) by the functions
# admin_imagestreams, admin_images and admin_imagestream of its library
# (ngx_http_registry_module/redis), like the admin commands: no token
# needed, and the same Redis settings (REGISTRY_REDIS_PORT,
# REGISTRY_REDIS_SOCKET).
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
        admin_call admin_imagestreams "$project" | sed 1d | images_ages $([ -n "$project" ] && echo 4 || echo 5)
    } | admin_table
}

images_get_images() {
    {
        printf 'NAME\tIMAGE REFERENCE\n'
        admin_call admin_images | sed 1d
    } | admin_table
}

images_describe_stream() {
    local name=$1 project=$2 out line kind a b c d
    [ -n "$name" ] || die "usage: describe imagestream NAME -n PROJECT"
    [ -n "$project" ] || die "describe imagestream needs -n PROJECT"
    admin_check_project "$project"
    [[ $name =~ ^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$ ]] || die "invalid image stream name '$name'"
    out=$(admin_call admin_imagestream "$project" "$name") || exit 1
    [ "$out" != unknown ] || die "imagestream \"$name\" not found in project \"$project\""
    out=${out#ok$'\n'}
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
