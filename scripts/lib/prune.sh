# shellcheck shell=bash
# Pruning, in the words of `oc adm prune images`. Sourced by
# scripts/registry after lib/admin.sh (admin_call):
#
#   prune images [--keep-tag-revisions=N] [--keep-younger-than=DURATION]
#                [--project=P] [--confirm]
#
# Per tag of every image stream (of project P only, with --project), the
# head, the newest N entries (default 3) and those younger than DURATION
# (default 60m; like oc: 0s, 90m, 24h, 1h30m) are kept, the other
# history entries go; then the Images that nothing keeps any more go too
# (no history entry names them, no kept index lists them, younger than
# DURATION otherwise; with --project, only those of P's repositories).
# Their manifests stay in their repositories, untagged and in no
# history: `scripts/registry gc --untagged` collects them and their
# layers.  Without --confirm nothing changes: it prints what it would
# remove.
#
# The work is done by the library functions admin_prune_stream (a page
# of one stream's tags at a time) and admin_prune_images (a page of
# Images), so Redis is never held long.  Removing an entry sends the
# tag's watch event (MODIFIED); removing an Image adds a "delete" event
# per repository to the Redis stream "events" (REGISTRY_EVENTS_MAXLEN,
# default 10000 as registry_events_maxlen; 0: none).  Webhooks are not
# called: nginx posts those, and prune runs outside it.

PRUNE_PAGE=500          # tags per call of admin_prune_stream
PRUNE_IMAGE_PAGE=200    # Images per call of admin_prune_images

# prune_seconds DURATION: Go's syntax, units h m s
prune_seconds() {
    local d=$1 s=0 n u
    [[ $d =~ ^([0-9]+[hms])+$ ]] || die "invalid duration '$d' (like 0s, 90m, 24h, 1h30m)"
    while [[ $d =~ ^([0-9]+)([hms])(.*)$ ]]; do
        n=$((10#${BASH_REMATCH[1]}))
        u=${BASH_REMATCH[2]}
        d=${BASH_REMATCH[3]}
        case $u in h) s=$((s + n * 3600)) ;; m) s=$((s + n * 60)) ;; s) s=$((s + n)) ;; esac
    done
    echo $s
}

prune_usage() {
    die "usage: prune images [--keep-tag-revisions=N] [--keep-younger-than=DURATION] [--project=P] [--confirm]"
}

cmd_prune() {
    local what=${1:-} keep=3 younger=60m project='' confirm=0
    [ "$what" = images ] || prune_usage
    shift
    while [ $# -gt 0 ]; do
        case $1 in
            --keep-tag-revisions=*) keep=${1#*=} ;;
            --keep-younger-than=*) younger=${1#*=} ;;
            --project=*) project=${1#*=} ;;
            --keep-tag-revisions|--keep-younger-than|--project)
                [ $# -ge 2 ] || prune_usage
                case $1 in
                    --keep-tag-revisions) keep=$2 ;;
                    --keep-younger-than) younger=$2 ;;
                    *) project=$2 ;;
                esac
                shift ;;
            --confirm) confirm=1 ;;
            *) prune_usage ;;
        esac
        shift
    done
    [[ $keep =~ ^[0-9]+$ ]] || die "invalid --keep-tag-revisions '$keep' (a number)"
    [ -z "$project" ] || admin_check_project "$project"
    local secs maxlen=${REGISTRY_EVENTS_MAXLEN:-10000}
    secs=$(prune_seconds "$younger") || exit 1
    [[ $maxlen =~ ^[0-9]+$ ]] || die "invalid REGISTRY_EVENTS_MAXLEN '$maxlen'"
    admin_connect

    # created after the cutoff: younger than DURATION (times in UTC, to the
    # second, as the registry writes them)
    local cutoff
    cutoff=$(date -u -d "@$(($(date +%s) - secs))" +%Y-%m-%dT%H:%M:%SZ)

    [ $confirm = 1 ] || printf 'Dry run enabled - no modifications will be made. Add --confirm to remove images\n\n'

    # 1. history entries, stream by stream
    local entries=0 images=0 p n after out line
    PRUNE_TMP=$(mktemp -d) || die "mktemp failed"
    trap 'rm -rf "$PRUNE_TMP"' EXIT
    local tmp=$PRUNE_TMP
    {
        if [ -n "$project" ]; then
            echo "$project"
        else
            admin_redis --raw --scan --pattern 'project:*:imagestreams' | sed -e 's/^project://' -e 's/:imagestreams$//'
        fi
    } | LC_ALL=C sort -u > "$tmp/projects"
    while read -r p; do
        admin_redis --raw zrange "project:$p:imagestreams" 0 -1 | sed -e "s|^|$p\t|"
    done < "$tmp/projects" > "$tmp/streams"
    while IFS=$'\t' read -r p n; do
        [ -n "$n" ] || continue
        after=''
        while :; do
            out=$(admin_call admin_prune_stream "$p" "$n" "$keep" "$cutoff" "$confirm" \
                "$(( maxlen > 0 ? maxlen : 1 ))" "$after" "$PRUNE_PAGE" </dev/null) || exit 1
            line=${out%%$'\n'*}
            [ "$out" = "$line" ] || printf '%s\n' "${out#*$'\n'}" | sed -e "s|^|$p/$n\t|" >> "$tmp/entries"
            case $line in
                more$'\t'*) after=${line#more$'\t'} ;;
                done) break ;;
                *) die "admin_prune_stream: unexpected answer '$line'" ;;
            esac
        done
    done < "$tmp/streams"
    touch "$tmp/entries"
    entries=$(wc -l < "$tmp/entries")
    if [ "$entries" -gt 0 ]; then
        echo "Deleting references from image streams to images ..."
        { printf 'STREAM\tTAG\tGENERATION\tIMAGE\tCREATED\n'; cat "$tmp/entries"; } | admin_table
        echo
    fi

    # 2. the Images: every one, a page at a time; a dry run discounts the
    # entries it would have removed
    local -A discount=()
    local r d c ts host instance
    if [ $confirm = 0 ]; then
        while read -r c r d; do
            discount[$d]+="$r $d $c "
        done < <(cut -f1,4 "$tmp/entries" | LC_ALL=C sort | uniq -c)
    fi
    admin_redis --raw zrange images 0 -1 > "$tmp/digests"
    ts=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
    host=$(hostname)
    instance=$(cat /proc/sys/kernel/random/uuid)
    local -a page=() args=()
    prune_page() {
        local -a triples=()
        local x
        [ ${#page[@]} -gt 0 ] || return 0
        for x in "${page[@]}"; do
            # shellcheck disable=SC2206
            [ -z "${discount[$x]:-}" ] || triples+=(${discount[$x]})
        done
        args=("$confirm" "$cutoff" "$project" "$maxlen" "$ts" "$host" "$instance"
              "$(cut -c1-28 /proc/sys/kernel/random/uuid)" "${#page[@]}" "${page[@]}" "${triples[@]}")
        admin_call admin_prune_images "${args[@]}" </dev/null | sed 1d >> "$tmp/images" || exit 1
        page=()
    }
    while read -r d; do
        [ -n "$d" ] || continue
        page+=("$d")
        [ ${#page[@]} -lt $PRUNE_IMAGE_PAGE ] || prune_page
    done < "$tmp/digests"
    prune_page
    touch "$tmp/images"
    images=$(wc -l < "$tmp/images")
    if [ "$images" -gt 0 ]; then
        echo "Deleting images from server ..."
        { printf 'IMAGE\tREPOSITORIES\n'; cat "$tmp/images"; } | admin_table
        echo
    fi

    if [ $confirm = 1 ]; then
        printf 'Summary: deleted %d history entries and %d images' "$entries" "$images"
    else
        printf 'Summary: would delete %d history entries and %d images' "$entries" "$images"
    fi
    printf ' (their manifests stay untagged for `scripts/registry gc --untagged`)\n'
}
