# Real clients against the registry with authorization off: podman builds
# an image from scratch (two small files and a 12 MiB one, so a layer goes
# to S3 as a multipart upload), pushes it, removes it, pulls it back with
# the same image id; skopeo inspects it, copies it to another repository
# (a cross-repository mount), copies an OCI layout made here with tar and
# sha256 (one image, and a two-platform index with --all) in and back out
# byte for byte, and deletes.
#
# Needs podman and skopeo (skipped, saying so, without them), Redis and
# the S3 store of scripts/test.  podman runs with vfs storage and a root,
# run root, auth file and temp dir under t/servroot-e2e; both tools run in
# a mount namespace where /var/lib/containers (skopeo's blob-info cache
# as root) is a directory of the servroot too: nothing of the machine's
# is touched.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use Registry::Blobs qw($HttpConfig $Config random_bytes);
use Registry::Harness qw(start_nginx read_file write_file free_ports);
use Registry::Manifests qw(d desc image index_of $OCI_MANIFEST $OCI_INDEX
    $OCI_CONFIG $OCI_LAYER);
use Registry::Podman qw(need_tools podman_setup run ok_run);

need_tools(qw(podman skopeo));

my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 20, 1);
my $root = getcwd() . '/t/servroot-e2e';
my $reg = "127.0.0.1:$port";

my $ngx = start_nginx(port => $port, servroot => $root, root_location => 0,
    http_config => $HttpConfig, config => $Config);

my $pod = "$root/podman";
my ($podman, $skopeo) = podman_setup($pod);
my @podman = @$podman;
my @skopeo = @$skopeo;
make_path("$pod/ctx/etc");
my @tls = ('--tls-verify=false');
my @copy = ('copy', '--src-tls-verify=false', '--dest-tls-verify=false');

sub access_log { read_file("$root/logs/access.log") // '' }

# the access log from byte $from on, once it matches $re: nginx logs a
# request after its answer, so the client may be done a moment before
sub logged {
    my ($from, $re) = @_;
    my $deadline = time + 3;
    while (1) {
        my $log = substr(access_log(), $from);
        return $log if $log =~ $re || time > $deadline;
        select undef, undef, undef, 0.05;
    }
}

# --- podman: build from scratch, push, remove, pull back

write_file("$pod/ctx/hello.txt", "hello from the e2e test $$\n");
write_file("$pod/ctx/etc/motd", "built by podman from scratch\n");
write_file("$pod/ctx/big.bin", random_bytes(12 * 1024 * 1024));
write_file("$pod/ctx/Containerfile", <<'EOF');
FROM scratch
COPY hello.txt /hello.txt
COPY etc /etc
COPY big.bin /big.bin
LABEL org.example.test=e2e
EOF

ok_run('podman build FROM scratch', @podman, 'build', '-q', '-t', 'localhost/e2e:1',
    "$pod/ctx");
my $id = ok_run('podman image inspect', @podman, 'image', 'inspect', '--format',
    '{{.Id}}', 'localhost/e2e:1');
chomp $id;
like $id, qr/^[0-9a-f]{64}$/, '... an image id';

my $log = length access_log();
ok_run('podman push', @podman, 'push', @tls, 'localhost/e2e:1', "$reg/e2e/podman:1");
my $re = qr{"PUT /v2/e2e/podman/manifests/1 HTTP/1.1" 201 };
my $pushed = logged($log, $re);
like $pushed, qr{"PATCH /v2/e2e/podman/blobs/uploads/[0-9a-f]{32} HTTP/1.1" 202 },
    '... its layers went through upload sessions';
like $pushed, $re, '... and its manifest';

ok_run('podman rmi', @podman, 'rmi', '-f', 'localhost/e2e:1');
my ($rc) = run(@podman, 'image', 'exists', 'localhost/e2e:1');
isnt $rc, 0, '... the image is gone';
ok_run('podman pull', @podman, 'pull', @tls, "$reg/e2e/podman:1");
my $id2 = ok_run('podman image inspect of the pulled image', @podman, 'image',
    'inspect', '--format', '{{.Id}}', "$reg/e2e/podman:1");
chomp $id2;
is $id2, $id, '... the same image id';

# the files are in the pulled image: export its file system
ok_run('podman create', @podman, 'create', '--name', 'e2e-files', "$reg/e2e/podman:1",
    '/none');
ok_run('podman export', @podman, 'export', '-o', "$pod/fs.tar", 'e2e-files');
my $list = ok_run('tar tf', 'tar', 'tf', "$pod/fs.tar");
like $list, qr{^hello\.txt$}m, '... hello.txt is in the image';
like $list, qr{^big\.bin$}m, '... and big.bin';
ok_run('tar xf big.bin', 'tar', '-C', "$pod/tmp", '-xf', "$pod/fs.tar", 'big.bin');
ok read_file("$pod/tmp/big.bin") eq read_file("$pod/ctx/big.bin"),
    '... byte for byte';
run(@podman, 'rm', '-f', 'e2e-files');

# --- skopeo: inspect, copy between two repositories of ours

my $out = ok_run('skopeo inspect', @skopeo, 'inspect', @tls, "docker://$reg/e2e/podman:1");
like $out, qr/"org\.example\.test": "e2e"/, '... the label';
my ($digest) = $out =~ /"Digest": "(sha256:[0-9a-f]{64})"/;
ok $digest, '... the manifest digest';
my @layers = $out =~ /"(sha256:[0-9a-f]{64})"/g;

$log = length access_log();
ok_run('skopeo copy docker://.../e2e/podman:1 docker://.../e2e/copy:2', @skopeo, @copy,
    "docker://$reg/e2e/podman:1", "docker://$reg/e2e/copy:2");
$re = qr{"POST /v2/e2e/copy/blobs/uploads/\?\S*mount=sha256(?::|%3A)[0-9a-f]{64}\S* HTTP/1.1" 201 };
like logged($log, $re), $re, '... the layers were mounted, not uploaded again';
$out = ok_run('skopeo inspect the copy', @skopeo, 'inspect', @tls, "docker://$reg/e2e/copy:2");
like $out, qr/"Digest": "\Q$digest\E"/, '... the same manifest digest';

# --- an OCI layout made here: one image, and a two-platform index

# a blob of the layout; returns its bytes
sub blob {
    my ($dir, $data) = @_;
    make_path("$dir/blobs/sha256");
    write_file("$dir/blobs/sha256/" . sha256_hex($data), $data);
    return $data;
}

my $oci = "$pod/oci";
make_path("$oci/src");
my (%manifest, %config);
for my $arch (qw(amd64 arm64)) {
    write_file("$oci/src/arch.txt", "an image for $arch\n");
    # compressed: skopeo would compress a plain tar, changing the manifest
    system('tar', '-C', "$oci/src", '-cf', "$oci/layer-$arch.tar", 'arch.txt') == 0
        && system('gzip', '-n', '-k', "$oci/layer-$arch.tar") == 0
        or die "tar or gzip failed\n";
    my $diff = d(read_file("$oci/layer-$arch.tar"));
    my $layer = blob($oci, read_file("$oci/layer-$arch.tar.gz"));
    my $cfg = blob($oci, qq({"architecture":"$arch","os":"linux","config":{},)
        . qq("rootfs":{"type":"layers","diff_ids":["$diff"]}}));
    $config{$arch} = d($cfg);
    $manifest{$arch} = blob($oci, image($OCI_MANIFEST, $OCI_CONFIG, $cfg,
        [$OCI_LAYER, $layer]));
}
my $index = blob($oci, index_of($OCI_INDEX, map {
    [$OCI_MANIFEST, $manifest{$_}, qq(,"platform":{"architecture":"$_","os":"linux"})]
} qw(amd64 arm64)));
write_file("$oci/oci-layout", '{"imageLayoutVersion":"1.0.0"}');
write_file("$oci/index.json", '{"schemaVersion":2,"manifests":['
    . desc($OCI_MANIFEST, $manifest{amd64},
        ',"annotations":{"org.opencontainers.image.ref.name":"one"}')
    . ',' . desc($OCI_INDEX, $index,
        ',"annotations":{"org.opencontainers.image.ref.name":"multi"}')
    . ']}');

ok_run('skopeo copy oci:LAYOUT:one docker://.../e2e/oci:1', @skopeo, @copy,
    "oci:$oci:one", "docker://$reg/e2e/oci:1");
$out = ok_run('skopeo inspect --raw', @skopeo, 'inspect', @tls, '--raw',
    "docker://$reg/e2e/oci:1");
is $out, $manifest{amd64}, '... the manifest, byte for byte';
ok_run('skopeo copy it back to a new layout', @skopeo, @copy, "docker://$reg/e2e/oci:1",
    "oci:$pod/back:one");
my $same = 1;
for my $f (glob "$oci/blobs/sha256/*") {
    (my $b = $f) =~ s{^\Q$oci\E}{$pod/back};
    next unless -e $b;
    $same &&= (read_file($f) eq read_file($b));
}
my @back = glob "$pod/back/blobs/sha256/*";
is scalar @back, 3, '... 3 blobs (manifest, config, layer)';
ok $same && !grep({ my $h = (split m{/}, $_)[-1]; !-e "$oci/blobs/sha256/$h" } @back),
    '... each the same as ours';

ok_run('skopeo copy --all of a two-platform index', @skopeo, @copy, '--all',
    "oci:$oci:multi", "docker://$reg/e2e/multi:1");
$out = ok_run('skopeo inspect --raw of the index', @skopeo, 'inspect', @tls, '--raw',
    "docker://$reg/e2e/multi:1");
is $out, $index, '... the index, byte for byte';
for my $arch (qw(amd64 arm64)) {
    $out = ok_run("skopeo inspect --config for $arch", @skopeo, '--override-arch', $arch,
        'inspect', @tls, '--config', '--raw', "docker://$reg/e2e/multi:1");
    is d($out), $config{$arch}, "... the $arch config";
}

ok_run('skopeo delete', @skopeo, 'delete', @tls, "docker://$reg/e2e/oci:1");
($rc, $out) = run(@skopeo, 'inspect', @tls, "docker://$reg/e2e/oci:1");
isnt $rc, 0, '... then inspect fails';
like $out, qr/manifest unknown|not found/i, '... the manifest is unknown';

# --- nothing went wrong on the way

my @bad = grep { /" 5\d\d / } split /\n/, access_log();
is scalar @bad, 0, 'no 5xx answer in the access log' or diag join "\n", @bad;
@bad = grep { /\[(?:error|crit|alert|emerg)\]/ } split /\n/, $ngx->error_log;
is scalar @bad, 0, 'no error in the error log' or diag join "\n", @bad;

$ngx->stop;

done_testing;
