# shellcheck shell=bash
# Storage given back, and project quotas. Sourced by scripts/registry
# (after lib/common.sh, lib/admin.sh and lib/prune.sh), which dispatches
#
#   gc [--dry-run] [--grace=DURATION] [--untagged] [--uploads-older-than=DURATION]
#      [--duty=PERCENT]
#       one collection, now: asks the registry's collector location
#       (REGISTRY_GC_URL, default <registry URL>/_registry/gc, loopback
#       only) and prints what it removed: manifests (--untagged), blobs
#       and their bytes, Images, upload sessions, orphaned objects and
#       multipart uploads. DURATION reads like oc's: 0s, 90m, 24h, 1h30m
#       (prune_seconds).
#       --dry-run removes nothing and lists what would go.
#       --duty=100% collects at full speed (default: registry_gc's duty,
#       10%: the collector rests 9x as long as it works).
#   quota set PROJECT [--storage=SIZE] [--imagestreams=N] [--image-size=SIZE]
#       SIZE as Kubernetes quantities (500Mi, 10Gi, 1G, 1.5Gi); "none"
#       removes that limit. Recounts the project's storage.
#   quota get PROJECT       used and hard, like `oc describe quota`
#   quota delete PROJECT    every limit of the project
#
# gc goes through the registry (S3 is its business); quota calls the
# library's admin_quota_* functions like the other admin commands
# (admin_call).

# quota_bytes SIZE: a Kubernetes quantity, in bytes
quota_bytes() {
    local q=$1
    [[ $q =~ ^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$ ]] \
        || die "invalid quantity '$q' (like 500Mi, 10Gi, 1G)"
    awk -v n="${BASH_REMATCH[1]}" -v s="${BASH_REMATCH[3]}" 'BEGIN {
        m["Ki"] = 2^10; m["Mi"] = 2^20; m["Gi"] = 2^30; m["Ti"] = 2^40; m["Pi"] = 2^50; m["Ei"] = 2^60
        m["k"] = 1e3; m["M"] = 1e6; m["G"] = 1e9; m["T"] = 1e12; m["P"] = 1e15; m["E"] = 1e18
        v = n * (s == "" ? 1 : m[s])
        if (v != int(v)) v = int(v) + 1
        printf "%.0f\n", v
    }'
}

# quota_human BYTES: 1.5Gi, 12Mi, 900
quota_human() {
    awk -v b="$1" 'BEGIN {
        split("Ki Mi Gi Ti Pi Ei", u, " ")
        if (b < 1024) { printf "%d\n", b; exit }
        for (i = 6; i >= 1; i--) {
            v = b / 2^(10 * i)
            if (v >= 1) {
                if (v == int(v)) printf "%d%s\n", v, u[i]
                else printf "%.1f%s\n", v, u[i]
                exit
            }
        }
    }'
}

cmd_gc() {
    local query='' arg url out code body more=1 sums='' duty
    for arg in "$@"; do
        case $arg in
            --dry-run) query+='&dry_run=1' ;;
            --untagged) query+='&untagged=1' ;;
            --grace=*) query+="&grace=$(prune_seconds "${arg#--grace=}")" || exit 1 ;;
            --uploads-older-than=*)
                query+="&uploads_older_than=$(prune_seconds "${arg#--uploads-older-than=}")" || exit 1 ;;
            --duty=*)
                duty=${arg#--duty=}
                duty=${duty%\%}
                [[ $duty =~ ^[0-9]+$ ]] && [ "$duty" -ge 1 ] && [ "$duty" -le 100 ] \
                    || die "invalid duty '${arg#--duty=}' (a percentage, 1% to 100%)"
                query+="&duty=$duty" ;;
            *) die "usage: gc [--dry-run] [--grace=DURATION] [--untagged] [--uploads-older-than=DURATION] [--duty=PERCENT]" ;;
        esac
    done
    command -v curl >/dev/null || die "curl is missing (scripts/registry up installs it)"
    url=${REGISTRY_GC_URL:?}
    [ -z "$query" ] || url+="?${query#&}"
    # a collection does a bounded amount of work per request: ask again
    # while it says there is more
    while [ "$more" = 1 ]; do
        body=$(curl -s -m 900 -w '\n%{http_code}' "$url") || body=$'\n000'
        code=${body##*$'\n'}
        body=${body%$'\n'*}
        case $code in
            200) ;;
            000) die "no answer from $url (scripts/registry up)" ;;
            429) die "a collection runs already: $(printf '%s' "$body" | gc_message)" ;;
            403) die "$url refused: the collector answers on loopback only" ;;
            *) die "$url answered $code: $(printf '%s' "$body" | gc_message)" ;;
        esac
        out=$(printf '%s' "$body" | gc_print) || die "unreadable answer from $url: $body"
        printf '%s\n' "$out" | grep -v '^#' || true
        sums+=$(printf '%s\n' "$out" | grep '^#')$'\n'
        more=$(printf '%s\n' "$out" | sed -n 's/^#more //p')
    done
    printf '%s' "$sums" | gc_total
}

# the message of an OCI error body
gc_message() {
    perl -MJSON::PP -e 'local $/; my $j = eval { decode_json(<STDIN>) };
        print $j && $j->{errors} ? $j->{errors}[0]{message} : "?"'
}

# one answer: a line per item removed, then "#" lines with the counts
gc_print() {
    perl -MJSON::PP -e '
        local $/; my $j = decode_json(<STDIN>);
        my $w = $j->{dry_run} ? "would remove " : "";
        for my $i (@{ $j->{removed} }) {
            my $k = $i->{kind};
            my $r = $i->{repository} ? " ($i->{repository})" : "";
            if ($k eq "manifest") { print "${w}manifest $i->{repository}\@$i->{name}\n" }
            elsif ($k eq "blob") { print "${w}blob $i->{name} $i->{size} bytes$r\n" }
            else { print "${w}$k $i->{name}\n" }
        }
        print "#$_ ", ($j->{$_} || 0), "\n"
            for qw(manifests blobs bytes images uploads orphans multipart
                   worked_ms rested_ms);
        print "#duty ", ($j->{duty} || 0), "\n";
        print "#dry ", ($j->{dry_run} ? 1 : 0), "\n";
        print "#partial ", ($j->{partial} ? 1 : 0), "\n";
        print "#unindexed ", (defined $j->{indexed} && !$j->{indexed} ? 1 : 0), "\n";
        print "#more ", ($j->{more} ? 1 : 0), "\n";'
}

gc_total() {
    local k v dry=0 partial=0 unindexed=0 duty=0
    declare -A n=([manifests]=0 [blobs]=0 [bytes]=0 [images]=0 [uploads]=0 [orphans]=0 [multipart]=0
                  [worked_ms]=0 [rested_ms]=0)
    while read -r k v; do
        [ -n "$k" ] || continue
        k=${k#\#}
        case $k in
            dry) dry=$v ;;
            partial) partial=$v ;;
            unindexed) unindexed=$v ;;
            duty) duty=$v ;;
            more) ;;
            *) n[$k]=$(( ${n[$k]} + v )) ;;
        esac
    done
    if [ "$dry" = 1 ]; then printf 'Dry run, nothing removed. Would remove: '
    else printf 'Removed: '; fi
    printf '%d manifests, %d blobs (%s, %d bytes), %d images, %d upload sessions, %d orphaned objects, %d multipart uploads\n' \
        "${n[manifests]}" "${n[blobs]}" "$(quota_human "${n[bytes]}")" "${n[bytes]}" \
        "${n[images]}" "${n[uploads]}" "${n[orphans]}" "${n[multipart]}"
    [ "$dry" = 1 ] || printf 'Worked %.1f s, rested %.1f s (duty %d%%)\n' \
        "$(awk -v m="${n[worked_ms]}" 'BEGIN { print m / 1000 }')" \
        "$(awk -v m="${n[rested_ms]}" 'BEGIN { print m / 1000 }')" "$duty"
    if [ "$partial" = 1 ]; then
        echo "(a dry run counts what one collection request would take: there is more)"
    fi
    if [ "$unindexed" = 1 ]; then
        echo "(data older than the collector is not indexed yet: the next collection indexes it first, and may keep or remove more than listed)"
    fi
}

cmd_quota() {
    local verb=${1:-} project=${2:-} arg storage='' streams='' size='' out
    [ -n "$verb" ] && [ -n "$project" ] \
        || die "usage: quota set PROJECT [--storage=SIZE] [--imagestreams=N] [--image-size=SIZE] | quota get PROJECT | quota delete PROJECT"
    admin_check_project "$project"
    admin_connect
    shift 2
    case $verb in
        set)
            [ $# -gt 0 ] || die "quota set $project: give --storage, --imagestreams or --image-size"
            for arg in "$@"; do
                case $arg in
                    --storage=none) storage=none ;;
                    --storage=*) storage=$(quota_bytes "${arg#--storage=}") || exit 1 ;;
                    --image-size=none) size=none ;;
                    --image-size=*) size=$(quota_bytes "${arg#--image-size=}") || exit 1 ;;
                    --imagestreams=none) streams=none ;;
                    --imagestreams=*)
                        streams=${arg#--imagestreams=}
                        [[ $streams =~ ^[0-9]+$ ]] || die "invalid number '$streams'" ;;
                    *) die "unknown option '$arg'" ;;
                esac
            done
            admin_rows admin_quota_set "$project" "$storage" "$streams" "$size" >/dev/null
            cmd_quota get "$project"
            ;;
        get)
            local -a v
            out=$(admin_rows admin_quota_get "$project")
            mapfile -t v <<< "$out"
            printf 'Name:       %s\n' "$project"
            printf '%-28s %-24s %s\n' Resource Used Hard '--------' '----' '----'
            printf '%-28s %-24s %s\n' openshift.io/imagestreams "${v[0]}" "${v[1]:--}"
            printf '%-28s %-24s %s\n' storage "$(quota_human "${v[2]}") (${v[2]})" \
                "$([ -n "${v[3]:-}" ] && echo "$(quota_human "${v[3]}") (${v[3]})" || echo -)"
            printf '%-28s %-24s %s\n' image-size - \
                "$([ -n "${v[4]:-}" ] && echo "$(quota_human "${v[4]}") (${v[4]})" || echo -)"
            ;;
        delete)
            admin_rows admin_quota_delete "$project" >/dev/null
            echo "quota of $project removed"
            ;;
        *) die "unknown quota command '$verb' (set, get, delete)" ;;
    esac
}
