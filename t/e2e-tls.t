# TLS and HTTP/2 end to end (issue 14), with authorization on and
# certificate verification ON everywhere: nginx listens with `ssl http2`,
# its certificate signed by a local CA that this file makes in its
# servroot with the functions `REGISTRY_TLS=1 scripts/registry up` uses
# (scripts/lib/nginx.sh: tls_ensure, nginx_tls_conf).
#
#   - the certificates: keys mode 600, SAN 127.0.0.1 and localhost, kept
#     when still good, made anew when the names change or they are near
#     expiry
#   - curl --http2 --cacert: /v2/, a 12 MiB blob in one POST, a session's
#     monolithic PUT, a chunked upload (POST, PATCH, PATCH, PATCH, PUT),
#     blob GET and HEAD, manifest PUT, GET and HEAD: each answered over
#     HTTP/2.  (Over HTTP/2 a large monolithic body is read before it goes
#     to S3: registry_s3_stream streams HTTP/1 bodies only, by design.)
#   - podman login, push and pull with --cert-dir holding ca.crt, over
#     HTTP/2 (the access log says so); skopeo inspect and copy with
#     --cert-dir, --src-cert-dir and --dest-cert-dir
#   - verification really happens: with another CA (or none) curl, podman
#     login and skopeo fail with a certificate error
#
# Needs podman, skopeo, openssl and curl (skipped, saying so, without
# them), Redis and the S3 store of scripts/test.  podman and skopeo run
# isolated under the servroot (Registry::Podman); /etc is not touched.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use File::Path qw(make_path remove_tree);
use Registry::Auth qw($AuthHttpConfig $AuthConfig editor leaked_tokens);
use Registry::Blobs qw(curl random_bytes);
use Registry::Harness qw(start_nginx read_file write_file free_ports);
use Registry::Manifests qw(d image $OCI_MANIFEST $OCI_CONFIG $OCI_LAYER);
use Registry::Podman qw(need_tools podman_setup run ok_run tar_image);

need_tools(qw(podman skopeo openssl curl));

my $top = getcwd();
my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 150, 1);
my $root = "$top/t/servroot-e2e-tls";
my $reg = "127.0.0.1:$port";
my $url = "https://$reg";
remove_tree($root);
make_path($root);

# a function of scripts/lib/nginx.sh; its output
sub tls_sh {
    open my $fh, '-|', 'bash', '-c',
        'set -euo pipefail; . "$1/scripts/lib/common.sh"; . "$1/scripts/lib/nginx.sh"; shift; "$@"',
        'tls', $top, @_ or die "bash: $!\n";
    local $/;
    my $out = <$fh> // '';
    close $fh;
    die "@_ failed\n" if $?;
    $out =~ s/\n\z//;
    return $out;
}

sub san { scalar `openssl x509 -in '$_[0]' -noout -ext subjectAltName 2>&1` }

# --- the certificates ------------------------------------------------------

my $tls = "$root/tls";
is tls_sh('tls_ensure', $tls, $reg), 'new CA', 'tls_ensure: a new CA and certificate';
for my $key (qw(ca.key server.key)) {
    is sprintf('%o', (stat "$tls/$key")[2] & 07777), '600', "... $key is mode 600";
}
like san("$tls/server.crt"), qr/IP Address:127\.0\.0\.1/, '... SAN 127.0.0.1';
like san("$tls/server.crt"), qr/DNS:localhost/, '... SAN localhost';
like scalar `openssl verify -CAfile '$tls/ca.crt' '$tls/server.crt' 2>&1`, qr/: OK$/,
    '... signed by the CA';
my $cert = read_file("$tls/server.crt");
is tls_sh('tls_ensure', $tls, $reg), 'kept', 'tls_ensure again: kept';
is read_file("$tls/server.crt"), $cert, '... the same certificate';
is tls_sh('tls_ensure', $tls, 'registry.example.test:5000'), 'renewed',
    'another public host: a new server certificate';
like san("$tls/server.crt"), qr/DNS:registry\.example\.test/, '... naming it';
{
    local $ENV{TLS_RENEW_DAYS} = 400;    # the certificate lasts 397 days
    is tls_sh('tls_ensure', $tls, $reg), 'renewed', 'near expiry: renewed';
}
my $ca = read_file("$tls/ca.crt");
is tls_sh('tls_ensure', $tls, $reg), 'kept', '... then kept';
is read_file("$tls/ca.crt"), $ca, '... under the same CA';

# another CA, for the checks that verification happens
is tls_sh('tls_ensure', "$root/other", $reg), 'new CA', 'another CA';
my $certs = "$root/certs";    # what --cert-dir gets: our CA
my $wrong = "$root/wrong";    # ... another CA
make_path($certs, $wrong);
write_file("$certs/ca.crt", $ca);
write_file("$wrong/ca.crt", read_file("$root/other/ca.crt"));

# --- nginx with TLS and HTTP/2 ---------------------------------------------

my $token = editor('tlsuser', 'tlsproj');
# the token off every command line: a header file, a password file
my $hdr = "$root/auth.hdr";
my $pwfile = "$root/token";
write_file($hdr, "Authorization: Bearer $token\n");
write_file($pwfile, $token);
chmod 0600, $hdr, $pwfile;

my $ngx = start_nginx(port => $port, servroot => "$root/nginx", root_location => 0,
    listen => 'ssl http2',
    http_config => $AuthHttpConfig . <<"EOF",
    registry_auth_cache zone=registry_auth_tls:1m valid=10s;
    log_format tls '\$ssl_protocol "\$request" \$status';
    access_log $root/nginx/logs/tls.log tls;
EOF
    config => $AuthConfig . tls_sh('nginx_tls_conf', $tls) . "\n");

# --- curl, HTTP/2 ----------------------------------------------------------

# h2(METHOD, PATH, file => BODY_FILE, headers => [...], ca => FILE):
# {rc, status, version, headers {lowercased}, body}
sub h2 {
    my ($method, $path, %o) = @_;
    $path =~ s{^https?://[^/]+}{};    # an absolute Location works as is
    my @args = ('-s', '--http2', '-H', "\@$hdr", '-D', "$root/h2.hdr",
        '-o', "$root/h2.body", '-w', '%{http_code} %{http_version}');
    push @args, '--cacert', $o{ca} // "$tls/ca.crt" unless exists $o{ca} && !defined $o{ca};
    push @args, $method eq 'HEAD' ? '-I' : ('-X', $method);
    push @args, map { ('-H', $_) } @{ $o{headers} || [] };
    push @args, '--data-binary', "\@$o{file}" if $o{file};
    unlink "$root/h2.hdr", "$root/h2.body";
    my ($rc, $out) = curl(@args, $url . $path);
    my ($status, $version) = split ' ', $out;
    my %h;
    for (split /\r\n/, read_file("$root/h2.hdr") // '') {
        $h{lc $1} = $2 if /^([^:\s]+):\s*(.*)$/;
    }
    return { rc => $rc, status => $status, version => $version, headers => \%h,
        body => read_file("$root/h2.body") // '' };
}

# a response over HTTP/2 with this status
sub h2_is {
    my ($r, $status, $name) = @_;
    ok $r->{rc} == 0 && $r->{status} eq $status && $r->{version} eq '2',
        "$name: $status over HTTP/2"
        or diag "curl exit $r->{rc}, status $r->{status}, HTTP/$r->{version}: "
            . substr($r->{body}, 0, 300);
}

sub with_digest { my ($loc, $dg) = @_; $loc . ($loc =~ /\?/ ? '&' : '?') . "digest=$dg" }

my $r = h2('GET', '/v2/');
h2_is($r, 200, 'GET /v2/ with the token');
$r = h2('GET', '/v2/', ca => undef);
is $r->{rc}, 60, 'curl without our CA: certificate verification fails (exit 60)';
$r = h2('GET', '/v2/', ca => "$wrong/ca.crt");
is $r->{rc}, 60, 'curl with another CA: fails (exit 60)';

# a 12 MiB blob in one POST (over HTTP/1 it would be streamed to S3)
my $blob = random_bytes(12 * 1024 * 1024);
my $dg = d($blob);
write_file("$root/blob", $blob);
$r = h2('POST', "/v2/tlsproj/h2/blobs/uploads/?digest=$dg", file => "$root/blob",
    headers => ['Content-Type: application/octet-stream']);
h2_is($r, 201, 'POST of a 12 MiB blob (monolithic)');
$r = h2('GET', "/v2/tlsproj/h2/blobs/$dg");
h2_is($r, 200, '... GET the blob');
ok $r->{body} eq $blob, '... byte for byte';

# a session's only PUT, with the whole blob
my $blob2 = random_bytes(6 * 1024 * 1024);
write_file("$root/blob2", $blob2);
$r = h2('POST', '/v2/tlsproj/h2put/blobs/uploads/');
h2_is($r, 202, 'POST a session');
$r = h2('PUT', with_digest($r->{headers}{location}, d($blob2)), file => "$root/blob2",
    headers => ['Content-Type: application/octet-stream']);
h2_is($r, 201, "... the session's monolithic PUT of 6 MiB");
is $r->{headers}{'docker-content-digest'}, d($blob2), '... its digest';

# a chunked upload: POST, three PATCHes, PUT
my $chunked = random_bytes(11 * 1024 * 1024 + 333);
my $cdg = d($chunked);
$r = h2('POST', '/v2/tlsproj/h2chunk/blobs/uploads/');
h2_is($r, 202, 'chunked: POST');
my $loc = $r->{headers}{location};
my $off = 0;
for my $len (5 * 1024 * 1024, 5 * 1024 * 1024, length($chunked) - 10 * 1024 * 1024) {
    write_file("$root/chunk", substr($chunked, $off, $len));
    $r = h2('PATCH', $loc, file => "$root/chunk", headers => [
        'Content-Type: application/octet-stream',
        'Content-Range: ' . $off . '-' . ($off + $len - 1)]);
    h2_is($r, 202, "chunked: PATCH $off-" . ($off + $len - 1));
    is $r->{headers}{range}, '0-' . ($off + $len - 1), '... Range';
    $loc = $r->{headers}{location} // $loc;
    $off += $len;
}
$r = h2('PUT', with_digest($loc, $cdg));
h2_is($r, 201, 'chunked: PUT ?digest=');
$r = h2('HEAD', "/v2/tlsproj/h2chunk/blobs/$cdg");
h2_is($r, 200, '... HEAD the blob');
is $r->{headers}{'content-length'}, length $chunked, '... its length';
$r = h2('GET', "/v2/tlsproj/h2chunk/blobs/$cdg");
ok $r->{body} eq $chunked, '... GET: byte for byte';

# a manifest of those blobs
my $config = '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}';
write_file("$root/config", $config);
$r = h2('POST', '/v2/tlsproj/h2chunk/blobs/uploads/?digest=' . d($config),
    file => "$root/config", headers => ['Content-Type: application/octet-stream']);
h2_is($r, 201, 'POST the config');
my $manifest = image($OCI_MANIFEST, $OCI_CONFIG, $config, [$OCI_LAYER, $chunked]);
write_file("$root/manifest", $manifest);
$r = h2('PUT', '/v2/tlsproj/h2chunk/manifests/v1', file => "$root/manifest",
    headers => ["Content-Type: $OCI_MANIFEST"]);
h2_is($r, 201, 'manifest PUT');
$r = h2('GET', '/v2/tlsproj/h2chunk/manifests/v1', headers => ["Accept: $OCI_MANIFEST"]);
h2_is($r, 200, 'manifest GET');
is $r->{body}, $manifest, '... byte for byte';
is $r->{headers}{'docker-content-digest'}, d($manifest), '... its digest';
$r = h2('HEAD', '/v2/tlsproj/h2chunk/manifests/' . d($manifest), headers => ["Accept: $OCI_MANIFEST"]);
h2_is($r, 200, 'manifest HEAD by digest');

# --- podman and skopeo, verification on ------------------------------------

my ($podman, $skopeo) = podman_setup("$root/podman");
my @podman = @$podman;
my @skopeo = @$skopeo;
tar_image("$root/podman", "hello over TLS $$\n");
ok_run('podman import', @podman, 'import', "$root/podman/image.tar", 'localhost/e2e-tls:1');

# podman login, the token on its standard input
sub login { run('sh', '-c', 'exec "$@" < "$0"', $pwfile, @podman, 'login', @_) }

my ($rc, $out) = login('--cert-dir', $wrong, '--password-stdin', '-u', 'x', $reg);
isnt $rc, 0, 'podman login with another CA fails';
like $out, qr/x509|certificate/i, '... on the certificate' or diag $out;
($rc, $out) = login('--cert-dir', $certs, '--password-stdin', '-u', 'x', $reg);
is $rc, 0, 'podman login --cert-dir (our CA)' or diag $out;

# podman (containers/image) speaks HTTP/1.1 over TLS: a Go client with a
# TLS configuration of its own does not offer h2. HTTP/2 is curl's above.
my $log0 = length(read_file("$root/nginx/logs/tls.log") // '');
ok_run('podman push --cert-dir', @podman, 'push', '--cert-dir', $certs,
    'localhost/e2e-tls:1', "$reg/tlsproj/app:1");
my $log = substr(read_file("$root/nginx/logs/tls.log") // '', $log0);
like $log, qr{^TLSv1\.[23] "PUT /v2/tlsproj/app/manifests/1 HTTP/[12]\.[01]" 201$}m,
    '... its manifest through TLS';
like $log, qr{^TLSv1\.[23] "(?:PATCH|PUT) /v2/tlsproj/app/blobs/uploads/\S* HTTP/[12]\.[01]" 20[12]$}m,
    '... its blobs through TLS';
unlike $log, qr{^-}m, '... nothing in plain text';
note 'podman speaks ' . join(', ', sort keys %{{ map { $_ => 1 } $log =~ m{ (HTTP/[\d.]+)"}g }})
    . ' over TLS';
my $id = ok_run('podman image inspect', @podman, 'image', 'inspect', '--format', '{{.Id}}',
    'localhost/e2e-tls:1');
ok_run('podman rmi', @podman, 'rmi', '-f', 'localhost/e2e-tls:1', "$reg/tlsproj/app:1");
ok_run('podman pull --cert-dir', @podman, 'pull', '--cert-dir', $certs, "$reg/tlsproj/app:1");
is ok_run('... inspect', @podman, 'image', 'inspect', '--format', '{{.Id}}',
    "$reg/tlsproj/app:1"), $id, '... the same image id';

# skopeo: the login above is in REGISTRY_AUTH_FILE, which it reads too
($rc, $out) = run(@skopeo, 'inspect', '--cert-dir', $wrong, "docker://$reg/tlsproj/app:1");
isnt $rc, 0, 'skopeo inspect with another CA fails';
like $out, qr/x509|certificate/i, '... on the certificate' or diag $out;
$out = ok_run('skopeo inspect --cert-dir', @skopeo, 'inspect', '--cert-dir', $certs,
    "docker://$reg/tlsproj/app:1");
my ($digest) = $out =~ /"Digest": "(sha256:[0-9a-f]{64})"/;
ok $digest, '... the manifest digest';
ok_run('skopeo copy --src-cert-dir --dest-cert-dir', @skopeo, 'copy',
    '--src-cert-dir', $certs, '--dest-cert-dir', $certs,
    "docker://$reg/tlsproj/app:1", "docker://$reg/tlsproj/copy:2");
$out = ok_run('skopeo inspect the copy', @skopeo, 'inspect', '--cert-dir', $certs,
    "docker://$reg/tlsproj/copy:2");
like $out, qr/"Digest": "\Q$digest\E"/, '... the same manifest digest';
ok_run('podman logout', @podman, 'logout', '--all');

# --- nothing went wrong on the way -----------------------------------------

$log = read_file("$root/nginx/logs/tls.log") // '';
my @bad = grep { /" 5\d\d$/ } split /\n/, $log;
is scalar @bad, 0, 'no 5xx answer in the access log' or diag join "\n", @bad;
@bad = $ngx->log_lines(undef, qr/\[(?:error|crit|alert|emerg)\]/);
is scalar @bad, 0, 'no error in the error log' or diag join "\n", @bad;
$ngx->stop;
my @leaks = leaked_tokens([$token], glob "$root/nginx/logs/*.log");
is scalar @leaks, 0, 'no token in the logs';

done_testing;
