# Blobs: HEAD, GET (streamed from S3, ranges, redirect to a presigned
# URL), DELETE; a blob is visible only through the repositories that link
# it; digests and names are checked.  Real nginx with the module, real
# Redis, real RGW.
#
# Repositories: btest/* (this file only).  Blob contents are random, so a
# run never meets the bytes of an earlier one in the bucket.
BEGIN { push @INC, 't/lib' }
BEGIN {
    # a servroot of its own: other files' runs must not remove it under us
    require Cwd;
    $ENV{TEST_NGINX_SERVROOT} ||= Cwd::getcwd() . '/t/servroot-blobs';
}
use strict;
use warnings;
use Test::Nginx::Socket 'no_plan';
use Registry::Blobs qw($HttpConfig $Config d random_bytes redis_cli s3
    s3_delete blob_key curl pipelined registry_blocks);
use Registry::Harness qw(start_nginx free_ports);

our $A = random_bytes(1000) . "end of A";
our $DA = d($A);
our $LA = length $A;
our $B = random_bytes(333);          # pushed to btest/gone, then lost in S3
our $DB = d($B);
our $EMPTY = d('');
our $UNKNOWN = d(random_bytes(16));  # never pushed
our $SHA512 = 'sha512:' . ('ab' x 64);

our $S3 = "127.0.0.1:$ENV{TEST_NGINX_S3_PORT}";

# blocks without their own config get the registry's; no default root
# location; blocks in file order
registry_blocks();
run_tests();

# Flows that need more than fixed requests: a presigned URL fetched from
# S3, a blob larger than nginx's buffers, an object lost from the bucket.

my $port = free_ports($ENV{TEST_NGINX_SERVER_PORT} + 1, 1);
my $ngx = start_nginx(port => $port, servroot => Cwd::getcwd() . '/t/servroot-blobs-b',
    root_location => 0, http_config => "$HttpConfig    registry_s3_redirect on;\n",
    config => $Config);

my $r = $ngx->request('GET', "/v2/btest/one/blobs/$DA");
is $r->{status}, 307, 'redirect mode: 307';
my $url = $r->{headers}{location} // '';
like $url, qr{^http://\Q$S3\E/\Q$ENV{TEST_NGINX_S3_BUCKET}\E/data/[0-9a-f]+\?.*X-Amz-Signature=[0-9a-f]{64}},
    '... to a presigned S3 URL';
like $url, qr{X-Amz-Expires=300\b}, '... that expires in 5 minutes';
is $r->{headers}{'docker-content-digest'}, $DA, '... with Docker-Content-Digest';
my ($rc, $got) = curl('-s', '-f', $url);
is $rc, 0, 'curl fetches the presigned URL';
ok $got eq $A, '... and gets the blob, byte for byte';
($rc, $got) = curl('-s', '-f', '-L', $ngx->url("/v2/btest/one/blobs/$DA"));
ok $rc == 0 && $got eq $A, 'curl -L through the registry gets the same bytes';
# the signature comes last: change its last digit
(my $tampered = $url) =~ s/([0-9a-f])$/$1 eq '0' ? '1' : '0'/e;
($rc) = curl('-s', '-f', '-o', '/dev/null', $tampered);
isnt $rc, 0, 'a tampered presigned URL is refused by S3';

$r = $ngx->request('HEAD', "/v2/btest/one/blobs/$DA");
is $r->{status}, 200, 'redirect mode: HEAD answers itself';
is $r->{headers}{'content-length'}, $LA, '... with the Content-Length';

$r = $ngx->request('GET', "/v2/btest/three/blobs/$DA");
is $r->{status}, 404, 'redirect mode: no redirect through a repository without the blob';
ok !exists $r->{headers}{location}, '... and no Location';

$r = $ngx->request('GET', "/v2/btest/one/blobs/$EMPTY");
is $r->{status}, 200, 'redirect mode: the empty blob is answered directly';
is $r->{headers}{'content-length'}, 0, '... empty';
$ngx->stop;

# A blob of several MiB streams through nginx's small proxy buffer; ranges
# in its middle.
$ngx = start_nginx(port => $port, servroot => Cwd::getcwd() . '/t/servroot-blobs-b',
    root_location => 0, http_config => $HttpConfig, config => $Config);

my $big = random_bytes(3 * 1024 * 1024 + 17);
my $dbig = d($big);
$r = $ngx->request('POST', "/v2/btest/big/blobs/uploads/?digest=$dbig", body => $big);
is $r->{status}, 201, '3 MiB monolithic push';
$r = $ngx->request('GET', "/v2/btest/big/blobs/$dbig", timeout => 30);
is $r->{status}, 200, '3 MiB GET';
is $r->{headers}{'content-length'}, length $big, '... Content-Length';
ok $r->{body} eq $big, '... the same bytes';
$r = $ngx->request('GET', "/v2/btest/big/blobs/$dbig",
    headers => [['Range', 'bytes=1048570-2097160']]);
is $r->{status}, 206, 'a range across the first MiB boundary: 206';
is $r->{headers}{'content-range'}, 'bytes 1048570-2097160/' . length($big), '... Content-Range';
ok $r->{body} eq substr($big, 1048570, 2097160 - 1048570 + 1), '... the right bytes';
$r = $ngx->request('GET', "/v2/btest/big/blobs/$dbig",
    headers => [['Range', 'bytes=-5']]);
ok $r->{status} == 206 && $r->{body} eq substr($big, -5), 'the last 5 bytes';

# the descriptor says the blob exists, the bucket lost it: 404, logged
$r = $ngx->request('POST', "/v2/btest/gone/blobs/uploads/?digest=$DB", body => $B);
is $r->{status}, 201, 'push a blob';
my $key = blob_key($DB);
like $key, qr{^data/[0-9a-f]{32}\z}, '... stored under a key of its own';
is s3_delete($key), 204, '... then lost from the bucket';
my $off = length $ngx->error_log(0);
$r = $ngx->request('GET', "/v2/btest/gone/blobs/$DB");
is $r->{status}, 404, 'GET of a blob missing from S3: 404';
like $r->{body}, qr/"BLOB_UNKNOWN"/, '... BLOB_UNKNOWN';
like $ngx->error_log($off), qr/blob \Q$DB\E has a descriptor but no object/,
    '... and the error log says why';

# the descriptor and the object disagree on the size: no response with a
# Content-Length the bytes would contradict
my $C = random_bytes(4321);
$r = $ngx->request('POST', '/v2/btest/size/blobs/uploads/?digest=' . d($C), body => $C);
is $r->{status}, 201, 'push a blob';
redis_cli('HSET', 'blob:' . d($C), 'size', 4322);
$off = length $ngx->error_log(0);
$r = $ngx->request('GET', '/v2/btest/size/blobs/' . d($C));
is $r->{status}, 500, 'GET with a descriptor one byte too long: 500';
like $ngx->error_log($off), qr/s3 sends 4321 bytes, not 4322/, '... logged';
$r = $ngx->request('GET', '/v2/btest/size/blobs/' . d($C), headers => [['Range', 'bytes=4000-']]);
is $r->{status}, 500, '... a range at its end too';
redis_cli('HSET', 'blob:' . d($C), 'size', 4321);
$r = $ngx->request('GET', '/v2/btest/size/blobs/' . d($C));
ok $r->{status} == 200 && $r->{body} eq $C, '... and all is well once it is right';

# an error answered before the body was read leaves the connection usable:
# the body is consumed, not parsed as the next request
my $raw = pipelined($port,
    "POST /v2/btest/one/blobs/uploads/?digest=sha256:bad HTTP/1.1\r\n"
    . "Host: localhost\r\nContent-Length: 10\r\n\r\n0123456789"
    . "PATCH /v2/btest/one/blobs/uploads/0123 HTTP/1.1\r\n"
    . "Host: localhost\r\nContent-Length: 5\r\n\r\nabcde"
    . "GET /v2/btest/one/blobs/$DA HTTP/1.1\r\n"
    . "Host: localhost\r\nConnection: close\r\n\r\n");
my @status = $raw =~ m{HTTP/1\.1 (\d{3}) }g;
is "@status", '400 404 200', 'keep-alive: errors before the body, then a GET on the same connection';
like $raw, qr/\Q$A\E$/, '... which gets its blob';
$ngx->stop;

__DATA__

=== TEST 1: monolithic push, then HEAD and GET with digest, length and type
--- request eval
[
    "POST /v2/btest/one/blobs/uploads/?digest=$::DA\n$::A",
    "HEAD /v2/btest/one/blobs/$::DA",
    "GET /v2/btest/one/blobs/$::DA",
]
--- more_headers eval
["Content-Type: application/octet-stream\nContent-Length: $::LA", "", ""]
--- error_code eval
[201, 200, 200]
--- response_headers eval
[
    "Location: /v2/btest/one/blobs/$::DA\nDocker-Content-Digest: $::DA\n"
    . "Docker-Distribution-API-Version: registry/2.0",
    ("Content-Length: $::LA\nDocker-Content-Digest: $::DA\n"
     . "Content-Type: application/octet-stream\nAccept-Ranges: bytes\n"
     . "Docker-Distribution-API-Version: registry/2.0") x 2
]
--- response_body eval
["", "", $::A]



=== TEST 2: ranges: 206 with Content-Range; 416 when unsatisfiable
--- request eval
[("GET /v2/btest/one/blobs/$::DA") x 8, "HEAD /v2/btest/one/blobs/$::DA"]
--- more_headers eval
[
    "Range: bytes=2-4",
    "Range: bytes=-3",
    "Range: bytes=1000-",
    "Range: bytes=0-99999999",
    "Range: bytes=$::LA-",
    "Range: bytes=-0",
    "Range: bytes=0-1,5-6",
    "Range: items=0-1",
    "Range: bytes=2-4",
]
--- error_code eval
[206, 206, 206, 206, 416, 416, 200, 200, 200]
--- response_headers eval
[
    "Content-Range: bytes 2-4/$::LA\nContent-Length: 3\nDocker-Content-Digest: $::DA",
    "Content-Range: bytes " . ($::LA - 3) . "-" . ($::LA - 1) . "/$::LA",
    "Content-Range: bytes 1000-" . ($::LA - 1) . "/$::LA",
    "Content-Range: bytes 0-" . ($::LA - 1) . "/$::LA\nContent-Length: $::LA",
    "Content-Range: bytes */$::LA",
    "Content-Range: bytes */$::LA",
    "!Content-Range\nContent-Length: $::LA",
    "!Content-Range\nContent-Length: $::LA",
    "!Content-Range\nContent-Length: $::LA",
]
--- response_body eval
[
    substr($::A, 2, 3),
    substr($::A, -3),
    substr($::A, 1000),
    $::A,
    qr/"code":"BLOB_UNKNOWN"/,
    qr/"code":"BLOB_UNKNOWN"/,
    $::A,
    $::A,
    "",
]



=== TEST 3: a blob is visible only through a repository that links it
--- request eval
[
    "GET /v2/btest/two/blobs/$::DA",
    "HEAD /v2/btest/two/blobs/$::DA",
    "GET /v2/btest/one/blobs/$::UNKNOWN",
    "HEAD /v2/btest/one/blobs/$::UNKNOWN",
    "DELETE /v2/btest/two/blobs/$::DA",
]
--- error_code eval
[404, 404, 404, 404, 404]
--- response_body eval
[
    qr/^\{"errors":\[\{"code":"BLOB_UNKNOWN","message":"[^"]+"\}\]\}$/,
    "",
    qr/"code":"BLOB_UNKNOWN"/,
    "",
    qr/"code":"BLOB_UNKNOWN"/,
]
--- response_headers eval
[("!Docker-Content-Digest\nContent-Type: application/json") x 5]



=== TEST 4: mount into btest/two, DELETE there: 202, then 404 there, still served by btest/one
--- request eval
[
    "POST /v2/btest/two/blobs/uploads/?mount=$::DA&from=btest/one",
    "GET /v2/btest/two/blobs/$::DA",
    "DELETE /v2/btest/two/blobs/$::DA",
    "GET /v2/btest/two/blobs/$::DA",
    "HEAD /v2/btest/two/blobs/$::DA",
    "DELETE /v2/btest/two/blobs/$::DA",
    "GET /v2/btest/one/blobs/$::DA",
]
--- error_code eval
[201, 200, 202, 404, 404, 404, 200]
--- response_headers eval
[
    "Location: /v2/btest/two/blobs/$::DA\nDocker-Content-Digest: $::DA",
    "Docker-Content-Digest: $::DA",
    "Docker-Content-Digest: $::DA\nContent-Length: 0",
    "", "", "",
    "Docker-Content-Digest: $::DA",
]
--- response_body eval
[
    "", $::A, "", qr/"code":"BLOB_UNKNOWN"/, "", qr/"code":"BLOB_UNKNOWN"/, $::A,
]



=== TEST 5: pushing the blob again links it again
--- request eval
[
    "POST /v2/btest/two/blobs/uploads/?digest=$::DA\n$::A",
    "GET /v2/btest/two/blobs/$::DA",
]
--- more_headers eval
["Content-Length: $::LA", ""]
--- error_code eval
[201, 200]
--- response_body eval
["", $::A]



=== TEST 6: digests: other algorithms are UNSUPPORTED, malformed ones DIGEST_INVALID
--- request eval
[
    "GET /v2/btest/one/blobs/$::SHA512",
    "DELETE /v2/btest/one/blobs/$::SHA512",
    "GET /v2/btest/one/blobs/sha256:abc",
    "GET /v2/btest/one/blobs/sha256:" . ("A" x 64),
    "GET /v2/btest/one/blobs/" . ("a" x 64),
    "GET /v2/btest/one/blobs/garbage",
    "GET /v2/btest/one/blobs/sha256:" . ("g" x 64),
    "DELETE /v2/btest/one/blobs/sha256:",
    "HEAD /v2/btest/one/blobs/:" . ("a" x 64),
]
--- error_code eval
[(400) x 9]
--- response_body eval
[
    (qr/"code":"UNSUPPORTED"/) x 2,
    (qr/"code":"DIGEST_INVALID"/) x 6,
    "",
]



=== TEST 7: names: exactly <project>/<image>, lowercase components
--- request eval
[
    "GET /v2/btest/one/extra/blobs/$::DA",
    "GET /v2/Btest/one/blobs/$::DA",
    "GET /v2/btest/One/blobs/$::DA",
    "GET /v2/btest/blobs/$::DA",
    "GET /v2/btest/-one/blobs/$::DA",
    "GET /v2/btest/one_/blobs/$::DA",
    "DELETE /v2/a/b/c/blobs/$::DA",
    "POST /v2/a/b/c/blobs/uploads/",
]
--- error_code eval
[(400) x 8]
--- response_body_like eval
[(qr/"code":"NAME_INVALID","message":"[^"]*<project>\/<name>/) x 8]



=== TEST 8: the empty blob
--- request eval
[
    "POST /v2/btest/one/blobs/uploads/?digest=$::EMPTY",
    "HEAD /v2/btest/one/blobs/$::EMPTY",
    "GET /v2/btest/one/blobs/$::EMPTY",
    "GET /v2/btest/one/blobs/$::EMPTY",
]
--- more_headers eval
["Content-Length: 0", "", "", "Range: bytes=0-0"]
--- error_code eval
[201, 200, 200, 416]
--- response_headers eval
[
    "Docker-Content-Digest: $::EMPTY",
    "Content-Length: 0\nDocker-Content-Digest: $::EMPTY",
    "Content-Length: 0\nDocker-Content-Digest: $::EMPTY\nContent-Type: application/octet-stream",
    "Content-Range: bytes */0",
]
--- response_body eval
["", "", "", qr/BLOB_UNKNOWN/]



=== TEST 9: methods a blob does not take
--- request eval
[
    "PUT /v2/btest/one/blobs/$::DA\nx",
    "POST /v2/btest/one/blobs/$::DA",
    "PATCH /v2/btest/one/blobs/$::DA\nx",
]
--- error_code eval
[405, 405, 405]
--- response_headers eval
[("Allow: GET, HEAD, DELETE") x 3]




=== TEST 10: Redis away: 503 UNAVAILABLE
--- http_config eval
(my $c = $Registry::Blobs::HttpConfig) =~ s/registry_redis \S+;/registry_redis 127.0.0.1:1;/;
$c
--- request eval
[
    "HEAD /v2/btest/one/blobs/$::DA",
    "GET /v2/btest/one/blobs/$::DA",
    "DELETE /v2/btest/one/blobs/$::DA",
    "POST /v2/btest/one/blobs/uploads/",
    "POST /v2/btest/one/blobs/uploads/?digest=$::DA\n$::A",
]
--- more_headers eval
["", "", "", "", "Content-Length: $::LA"]
--- error_code eval
[503, 503, 503, 503, 503]
--- response_body_like eval
["", (qr/"code":"UNAVAILABLE"/) x 4]
--- no_error_log
[crit]
[alert]



=== TEST 11: S3 away: 503 UNAVAILABLE, and the blob stays unknown
--- http_config eval
(my $c = $Registry::Blobs::HttpConfig) =~ s/registry_s3_endpoint \S+;/registry_s3_endpoint http:\/\/127.0.0.1:1;/;
$c
--- config eval
(my $c = $Registry::Blobs::Config) =~ s/proxy_pass \S+;/proxy_pass http:\/\/127.0.0.1:1\/;/;
$c
--- request eval
[
    "GET /v2/btest/one/blobs/$::DA",
    "POST /v2/btest/s3away/blobs/uploads/?digest=$::DB\n$::B",
    "HEAD /v2/btest/s3away/blobs/$::DB",
    "HEAD /v2/btest/one/blobs/$::DA",
]
--- more_headers eval
["", "Content-Length: " . length($::B), "", ""]
--- error_code eval
[503, 503, 404, 200]
--- response_body_like eval
[(qr/"code":"UNAVAILABLE","message":"s3: no answer"/) x 2, "", ""]
--- no_error_log
[crit]
[alert]
