# nginx.conf rendering and TLS certificates, shared by scripts/registry and
# scripts/bench (sourced after common.sh, not run).

# render_nginx_conf PREFIX [NAME=VALUE...]: conf/nginx.conf rendered to
# PREFIX/conf/nginx.conf, each @NAME@ replaced by VALUE (see the top of
# the template for the names). PREFIX, its conf/ logs/ run/ tmp/ and the
# worker user (@USER@, unless given) are made here. Names ending in _EXTRA
# are snippets, empty unless given: a snippet of several lines on a line
# of its own is indented like its placeholder; a line left empty goes.
# Dies on a placeholder nobody gave a value.
#   render_nginx_conf "$NGX" MODULE=... LISTEN=127.0.0.1:5000 ... \
#       SERVER_EXTRA="$(nginx_tls_conf "$VAR/tls")"
render_nginx_conf() {
    local prefix=$1 out=$1/conf/nginx.conf kv user
    shift
    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/run" "$prefix/tmp"
    chmod 755 "$prefix" "$prefix/tmp"
    user=$(nginx_worker_user "$prefix")
    local -a env=("NGXV_PREFIX=$prefix" "NGXV_USER=$user")
    for kv in "$@"; do
        case $kv in
            [A-Z]*=*) env+=("NGXV_$kv") ;;
            *) die "render_nginx_conf: not NAME=VALUE: $kv" ;;
        esac
    done
    {
        echo "# Rendered from conf/nginx.conf by scripts/$(basename "$0"): edit the template."
        env "${env[@]}" awk '
            function lit(s, from, to,   i, out) {   # replace, no regex
                out = ""
                while ((i = index(s, from)) > 0) {
                    out = out substr(s, 1, i - 1) to
                    s = substr(s, i + length(from))
                }
                return out s
            }
            /^[[:space:]]*#/ { print; next }   # comments name the placeholders
            {
                line = $0
                # a snippet alone on its line: every line of it indented
                if (match(line, /^[[:space:]]*@[A-Z0-9_]+_EXTRA@[[:space:]]*$/)) {
                    ind = line; sub(/[^[:space:]].*/, "", ind)
                    name = line; gsub(/[[:space:]@]/, "", name)
                    v = ENVIRON["NGXV_" name]
                    if (v == "") next
                    n = split(v, parts, "\n")
                    for (i = 1; i <= n; i++) print (parts[i] == "" ? "" : ind parts[i])
                    next
                }
                while (match(line, /@[A-Z0-9_]+@/)) {
                    name = substr(line, RSTART + 1, RLENGTH - 2)
                    if (!(("NGXV_" name) in ENVIRON) && name !~ /_EXTRA$/) {
                        print "render_nginx_conf: no value for @" name "@" > "/dev/stderr"
                        bad = 1
                        line = lit(line, "@" name "@", "")
                        continue
                    }
                    line = lit(line, "@" name "@", ENVIRON["NGXV_" name])
                }
                print line
            }
            END { exit bad }' "$TOP/conf/nginx.conf"
    } > "$out.new" || die "could not render $out (above)"
    mv "$out.new" "$out"
}

# Worker user: nobody, unless nobody cannot reach the prefix (e.g. the
# checkout is under /root), in which case the workers stay root; not
# root: the user itself (nginx cannot switch).
nginx_worker_user() {
    [ "$(id -u)" = 0 ] || { id -un; return; }
    if runuser -u nobody -- test -x "$1/tmp" 2>/dev/null; then
        echo "nobody nogroup"
    else
        log "nobody cannot reach $1: nginx workers run as root"
        echo root
    fi
}

# nginx_tls_conf DIR: the server{} lines of TLS with DIR/server.crt and
# DIR/server.key (made by tls_ensure). The listen line takes
# "ssl http2" itself.
nginx_tls_conf() {
    cat <<EOF
ssl_certificate $1/server.crt;
ssl_certificate_key $1/server.key;
ssl_protocols TLSv1.2 TLSv1.3;
ssl_session_cache shared:registry_tls:1m;
ssl_session_timeout 1h;
EOF
}

# ------------------------------------------------------------------- TLS

TLS_CA_DAYS=${TLS_CA_DAYS:-3650}
TLS_CERT_DAYS=${TLS_CERT_DAYS:-397}
TLS_RENEW_DAYS=${TLS_RENEW_DAYS:-30}

# tls_names NAME...: the subjectAltName value for 127.0.0.1, localhost and
# NAME... (host or host:port, IPv4, [IPv6] or DNS), each once, sorted
tls_names() {
    local n
    for n in 127.0.0.1 localhost "$@"; do
        case $n in
            \[*\]*) n=${n#\[}; n=${n%%\]*} ;;         # [v6]:port
            *:*:*) ;;                                  # bare v6
            *:*) n=${n%:*} ;;                          # host:port
        esac
        case $n in
            '' | 0.0.0.0 | '*' | :: | *[!0-9]*) ;;
            *) continue ;;                             # a bare port
        esac
        case $n in
            '' | 0.0.0.0 | '*' | ::) continue ;;
            *[!0-9.]*) if [[ $n == *:* ]]; then echo "IP:$n"; else echo "DNS:$n"; fi ;;
            *) echo "IP:$n" ;;
        esac
    done | sort -u | paste -sd, -
}

# tls_cert_names CERT: its subjectAltName in tls_names' form
tls_cert_names() {
    openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null |
        sed -n '2,$p' | tr ',' '\n' | sed -e 's/^ *//' -e 's/^IP Address:/IP:/' |
        grep -v '^$' | sort -u | paste -sd, -
}

# tls_ensure DIR NAME...: a local CA (DIR/ca.crt, DIR/ca.key) and a
# server certificate it signed (DIR/server.crt, DIR/server.key) for
# 127.0.0.1, localhost and NAME... (see tls_names); keys mode 0600.
# Both are reused while they have more than TLS_RENEW_DAYS left; the
# server certificate is made anew when the names change or the CA did.
# Prints what it did: "kept", "renewed" (server certificate) or "new CA".
tls_ensure() {
    local dir=$1 san cn what=kept
    shift
    san=$(tls_names "$@")
    cn=${san%%,*}
    mkdir -p "$dir"
    chmod 755 "$dir"
    local renew=$((TLS_RENEW_DAYS * 86400))
    if ! openssl x509 -in "$dir/ca.crt" -noout -checkend "$renew" >/dev/null 2>&1 \
        || [ ! -s "$dir/ca.key" ]; then
        (
            umask 077
            openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout "$dir/ca.key.new" -out "$dir/ca.crt.new" -days "$TLS_CA_DAYS" \
                -subj "/CN=ngx_http_registry local CA $(hostname -s 2>/dev/null) $(date -u +%Y%m%d%H%M%S)" \
                -addext basicConstraints=critical,CA:TRUE \
                -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1
        ) || die "openssl: could not make a CA in $dir"
        chmod 644 "$dir/ca.crt.new"
        mv "$dir/ca.key.new" "$dir/ca.key"
        mv "$dir/ca.crt.new" "$dir/ca.crt"
        what="new CA"
    fi
    if [ "$what" = "new CA" ] \
        || ! openssl x509 -in "$dir/server.crt" -noout -checkend "$renew" >/dev/null 2>&1 \
        || ! openssl verify -CAfile "$dir/ca.crt" "$dir/server.crt" >/dev/null 2>&1 \
        || [ "$(tls_cert_names "$dir/server.crt")" != "$san" ] || [ ! -s "$dir/server.key" ]; then
        (
            umask 077
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout "$dir/server.key.new" -out "$dir/server.csr" \
                -subj "/CN=${cn#*:}" >/dev/null 2>&1 &&
            printf '%s\n' "subjectAltName=$san" "basicConstraints=critical,CA:FALSE" \
                "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
                > "$dir/server.ext" &&
            openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
                -CAcreateserial -CAserial "$dir/ca.srl" -days "$TLS_CERT_DAYS" \
                -extfile "$dir/server.ext" -out "$dir/server.crt.new" >/dev/null 2>&1
        ) || die "openssl: could not make a server certificate in $dir"
        chmod 644 "$dir/server.crt.new"
        mv "$dir/server.key.new" "$dir/server.key"
        mv "$dir/server.crt.new" "$dir/server.crt"
        rm -f "$dir/server.csr" "$dir/server.ext"
        [ "$what" = kept ] && what=renewed
    fi
    echo "$what"
}
