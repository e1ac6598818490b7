# The S3 client through nginx, against the real RGW, one operation at a
# time, each reached through the registry endpoint that uses it:
#   HeadBucket (/healthz), PutObject (monolithic push), GetObject (blob
#   GET, whole and ranged), DeleteObject (a duplicate push drops its copy),
#   CreateMultipartUpload + UploadPart + CompleteMultipartUpload (a chunked
#   push), AbortMultipartUpload (an upload cancelled).
# And what goes wrong: a wrong secret key is refused by RGW with
# SignatureDoesNotMatch; S3 stopped (nothing listening) makes /healthz 503;
# bad directive values fail `nginx -t`.
#
# Repositories: s3test/* (this file only).
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use Registry::Blobs qw(own_bucket $HttpConfig $Config d random_bytes s3 s3_objects
    s3_uploads blob_key);
use Registry::Harness qw(start_nginx nginx_check free_ports);

my $MiB = 1024 * 1024;
my $top = getcwd();
my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} // 1984) + 40, 10);

# a bucket of its own: it checks that no object is added bucket-wide,
# which another file pushing beside it (prove -j) would break
own_bucket('registry-test-s3');

my $health = "    location = /healthz { registry_health; }\n";

sub instance {
    my ($n, $http) = @_;
    return start_nginx(port => $port + $n, servroot => "$top/t/servroot-s3-$n",
        root_location => 0, http_config => $http, config => $Config . $health);
}

my $ngx = instance(0, $HttpConfig);

# HeadBucket
my $r = $ngx->request('GET', '/healthz');
is $r->{status}, 200, 'HeadBucket: /healthz 200';
like $r->{body}, qr/"s3":"ok"/, 'HeadBucket: S3 named ok';

# PutObject
my $blob = random_bytes(3000);
my $dg = d($blob);
$r = $ngx->request('POST', "/v2/s3test/put/blobs/uploads/?digest=$dg", body => $blob);
is $r->{status}, 201, 'PutObject: monolithic push 201';
my $key = blob_key($dg);
ok $key, 'PutObject: the descriptor names an S3 key';
my $obj = s3('GET', $key);
is $obj->{status}, 200, 'PutObject: the object is in the bucket';
ok $obj->{body} eq $blob, 'PutObject: with the exact bytes';

# GetObject, whole and ranged
$r = $ngx->request('GET', "/v2/s3test/put/blobs/$dg");
is $r->{status}, 200, 'GetObject: 200';
ok $r->{body} eq $blob, 'GetObject: the bytes';
$r = $ngx->request('GET', "/v2/s3test/put/blobs/$dg", headers => [[Range => 'bytes=100-199']]);
is $r->{status}, 206, 'GetObject ranged: 206';
ok $r->{body} eq substr($blob, 100, 100), 'GetObject ranged: the bytes of the range';

# DeleteObject: a second upload of the same bytes keeps one object
my $before = scalar @{ s3_objects('data/') };
$r = $ngx->request('POST', '/v2/s3test/dup/blobs/uploads/');
is $r->{status}, 202, 'a second upload of the same blob starts';
my $loc = $r->{headers}{location};
$r = $ngx->request('PATCH', $loc, body => $blob,
    headers => [['Content-Type', 'application/octet-stream']]);
is $r->{status}, 202, 'its chunk is taken';
$r = $ngx->request('PUT', "$loc?digest=$dg");
is $r->{status}, 201, 'and it completes';
is scalar @{ s3_objects('data/') }, $before, 'DeleteObject/dedupe: no second object';
is blob_key($dg), $key, 'the blob keeps its first object';

# CreateMultipartUpload, UploadPart, CompleteMultipartUpload
my $big = random_bytes(12 * $MiB);
my $dbig = d($big);
$r = $ngx->request('POST', '/v2/s3test/mpu/blobs/uploads/');
$loc = $r->{headers}{location};
for my $i (0 .. 1) {
    my $part = substr($big, $i * 6 * $MiB, 6 * $MiB);
    my $range = sprintf '%d-%d', $i * 6 * $MiB, ($i + 1) * 6 * $MiB - 1;
    $r = $ngx->request('PATCH', $loc, body => $part, timeout => 60,
        headers => [['Content-Range', $range]]);
    is $r->{status}, 202, "UploadPart $i: 202";
}
my $id = ($loc =~ m{/uploads/([0-9a-f]+)}) ? $1 : '';
is scalar @{ s3_uploads("data/$id") }, 1, 'CreateMultipartUpload: one open upload';
$r = $ngx->request('PUT', "$loc?digest=$dbig", timeout => 60);
is $r->{status}, 201, 'CompleteMultipartUpload: 201';
is scalar @{ s3_uploads("data/$id") }, 0, 'no upload left open';
$obj = s3('GET', blob_key($dbig));
ok $obj->{status} == 200 && $obj->{body} eq $big, 'the completed object holds the bytes';

# AbortMultipartUpload
$r = $ngx->request('POST', '/v2/s3test/abort/blobs/uploads/');
$loc = $r->{headers}{location};
$id = ($loc =~ m{/uploads/([0-9a-f]+)}) ? $1 : '';
$r = $ngx->request('PATCH', $loc, body => substr($big, 0, 6 * $MiB), timeout => 60);
is $r->{status}, 202, 'a part is uploaded';
is scalar @{ s3_uploads("data/$id") }, 1, 'its multipart upload is open';
$r = $ngx->request('DELETE', $loc);
is $r->{status}, 204, 'the upload is cancelled';
is scalar @{ s3_uploads("data/$id") }, 0, 'AbortMultipartUpload: nothing left open';

$ngx->stop;

# A wrong secret key: RGW checks the signature and refuses it
(my $wrong = $HttpConfig) =~ s/registry_s3_secret_key [^;]+;/registry_s3_secret_key not-the-secret;/;
$ngx = instance(1, $wrong);
$r = $ngx->request('GET', '/healthz');
is $r->{status}, 503, 'wrong secret: /healthz 503';
$blob = random_bytes(500);
$r = $ngx->request('POST', '/v2/s3test/wrong/blobs/uploads/?digest=' . d($blob), body => $blob);
is $r->{status}, 500, 'wrong secret: the push fails';
like $r->{body}, qr/"errors":\[\{"code":"UNKNOWN"/, 'with an OCI error body';
like $ngx->error_log, qr/SignatureDoesNotMatch/, 'RGW said SignatureDoesNotMatch';
unlike $ngx->error_log, qr/not-the-secret/, 'the secret is never logged';
$ngx->stop;

# S3 stopped: nothing listens on the endpoint
my $closed = $port + 9;
(my $down = $HttpConfig) =~ s/127\.0\.0\.1:\$TEST_NGINX_S3_PORT/127.0.0.1:$closed/;
(my $down_config = $Config) =~ s/127\.0\.0\.1:\$TEST_NGINX_S3_PORT/127.0.0.1:$closed/;
$ngx = start_nginx(port => $port + 2, servroot => "$top/t/servroot-s3-2",
    root_location => 0, http_config => $down, config => $down_config . $health);
$r = $ngx->request('GET', '/healthz');
is $r->{status}, 503, 'S3 stopped: /healthz 503';
like $r->{body}, qr/"UNAVAILABLE".*s3/, 'S3 stopped: it names S3';
$r = $ngx->request('POST', '/v2/s3test/down/blobs/uploads/?digest=' . d('x'), body => 'x');
is $r->{status}, 503, 'S3 stopped: a push is 503';
$ngx->stop;

# Bad directive values fail `nginx -t` with a clear message
my %bad = (
    'registry_redis redis.example.com:6379;' => qr/must be an IP address/,
    'registry_redis 127.0.0.1:99999;' => qr/invalid port/,
    'registry_s3_endpoint ftp://127.0.0.1;' => qr/must start with http/,
    'registry_s3_location /_s3;' => qr/must start and end with/,
    'registry_history_depth 0;' => qr/must be/,
);
for my $line (sort keys %bad) {
    (my $http = $HttpConfig) =~ s/^\s*\Q@{[ (split ' ', $line)[0] ]}\E .*$//mg;
    my ($rc, $out) = nginx_check(port => $port + 3, servroot => "$top/t/servroot-s3-conf",
        root_location => 0, http_config => "$http    $line\n", config => $Config);
    isnt $rc, 0, "nginx -t refuses: $line";
    like $out, $bad{$line}, "with a clear message: $line";
}

done_testing;
