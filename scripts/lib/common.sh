# Helpers shared by the scripts in scripts/ (sourced, not run).
# Callers use `set -euo pipefail`.

TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

# Debian packages each part needs; a fresh machine has none of them.
PKGS_BUILD="nginx nginx-dev build-essential libhiredis-dev libjansson-dev libssl-dev"
PKGS_REDIS="redis-server redis-tools"
PKGS_REDIS_HA="redis-sentinel"      # REDIS_HA=1, t/topology.t
PKGS_RGW="ceph-mon ceph-osd radosgw ceph-common curl uuid-runtime"
PKGS_TEST="perl libtest-base-perl curl jq podman skopeo prometheus openssl redis-sentinel"
PKGS_SANITIZE="clang libclang-rt-14-dev"   # SANITIZE=1 scripts/test

log() { printf '[%s] %s\n' "${LOG_TAG:-$(basename "$0")}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ensure_pkgs PKG...: apt-get install those not installed yet.
# `apt-get update` runs at most once per top-level invocation (the flag is
# exported so scripts called from scripts don't repeat it).
ensure_pkgs() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
            || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}) and not root"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Packages like redis-server start their system service on install
    # (port 6379, which is ours): forbid that for this install only.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e $policy ]; then
        printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy && made_policy=1
    fi
    if [ "${REGISTRY_APT_UPDATED:-}" != 1 ]; then
        if ! apt-get update -qq; then
            if [ $made_policy = 1 ]; then rm -f $policy; fi
            die "apt-get update failed"
        fi
        export REGISTRY_APT_UPDATED=1
    fi
    local rc=0
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    if [ $made_policy = 1 ]; then rm -f $policy; fi
    [ $rc = 0 ] || die "apt-get install ${missing[*]} failed"
}

# pid_alive FILE COMM_REGEX: the pid in FILE is a live, non-zombie process
# whose name matches COMM_REGEX (so a recycled pid is not mistaken for ours).
pid_alive() {
    local p
    p=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$p" ] || return 1
    grep -qxE "$2" "/proc/$p/comm" 2>/dev/null || return 1
    ! grep -qE '\) [ZX] ' "/proc/$p/stat" 2>/dev/null
}

# stop_pidfile FILE COMM_REGEX NAME [SECONDS [SIGNAL]]: SIGNAL (default
# TERM), wait up to SECONDS, then KILL. Never looks processes up by name.
stop_pidfile() {
    local f=$1 re=$2 name=$3 t=${4:-30} sig=${5:-TERM} p i
    if pid_alive "$f" "$re"; then
        p=$(cat "$f")
        kill -"$sig" "$p" 2>/dev/null || true
        for ((i = 0; i < t * 5; i++)); do pid_alive "$f" "$re" || break; sleep 0.2; done
        if pid_alive "$f" "$re"; then
            log "$name ($p) did not exit in ${t}s, sending KILL"
            kill -KILL "$p" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do pid_alive "$f" "$re" || break; sleep 0.1; done
        fi
        log "stopped $name ($p)"
    fi
    rm -f "$f"
}

# wait_for SECONDS COMMAND...: retry COMMAND every 0.2 s until it succeeds.
wait_for() {
    local end=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}

# port_open PORT: something listens on 127.0.0.1:PORT (bash /dev/tcp, no nc).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# redis_socket ROOT PORT: where that Redis listens on a unix socket; a
# socket path must fit in 108 bytes, and a deep checkout may not
redis_socket() {
    local sock=$1/redis.sock
    [ ${#sock} -lt 100 ] || sock=/tmp/registry-redis-$2.sock
    echo "$sock"
}
