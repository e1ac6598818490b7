# The SigV4 signer (ngx_http_registry_sigv4.c) against the published AWS
# examples ("Signature Calculations for the Authorization Header: Payload
# in a Single Chunk" and "Query String Auth"), compiled alone with
# t/unit/sigv4_test.c: no nginx, no S3.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use FindBin;

my $top = "$FindBin::Bin/..";
my $src = '/usr/share/nginx/src/src';
my $build = "$top/var/build";

# ngx_auto_config.h comes from nginx's configure, run by scripts/build
if (!-f "$build/ngx_auto_config.h") {
    system("$top/scripts/build >/dev/null") == 0
        or BAIL_OUT('scripts/build failed: no ngx_auto_config.h');
}

my $dir = tempdir(CLEANUP => 1);
my $bin = "$dir/sigv4_test";

my @inc = map { "-I$src/$_" }
    qw(core event event/modules os/unix http http/modules http/v2);

my $cmd = join ' ', 'gcc -Wall -Wextra -Wno-unused-parameter -Werror',
    @inc, "-I$build", "-I$top/ngx_http_registry_module",
    "$top/t/unit/sigv4_test.c",
    "$top/ngx_http_registry_module/ngx_http_registry_sigv4.c",
    '-lcrypto', "-o $bin 2>&1";

my $out = `$cmd`;
is($?, 0, 'the signer compiles alone') or diag($out);

$out = `$bin`;
is($?, 0, 'the test program runs');

my %got = map { /^(\S+) (.*)$/ ? ($1, $2) : () } split /\n/, $out;

my $get = 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41';
my $put = '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd';
my $presign =
    'aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';

is($got{get_signature}, $get, 'GET example: signature');
is($got{get_authorization},
   'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/'
   . 's3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;'
   . "x-amz-date, Signature=$get",
   'GET example: Authorization');

is($got{get_signature_again}, $get, 'cached signing key: same signature');
isnt($got{get_signature_wrong_secret}, $get,
     'another secret, same day: another signature (the cache keys it)');
like($got{get_signature_wrong_secret}, qr/^[0-9a-f]{64}$/,
     'another secret: still a signature');
is($got{get_signature_secret_back}, $get, 'the secret back: the signature back');

is($got{put_payload},
   '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
   'PUT example: payload hash');
is($got{put_signature}, $put, 'PUT example: signature');
is($got{put_authorization},
   'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/'
   . 's3/aws4_request, SignedHeaders=date;host;x-amz-content-sha256;'
   . "x-amz-date;x-amz-storage-class, Signature=$put",
   'PUT example: Authorization, extra headers merged in order');

is($got{presign_query},
   'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE'
   . '%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z'
   . '&X-Amz-Expires=86400&X-Amz-SignedHeaders=host'
   . "&X-Amz-Signature=$presign",
   'presigned GET example: query');

is($got{bad_date}, 'refused', 'an x-amz-date that is no timestamp');
is($got{host_twice}, 'refused', 'a header signed twice');
is($got{no_payload_hash}, 'refused', 'no payload hash');
is($got{presign_too_long}, 'refused', 'X-Amz-Expires over 7 days');
is($got{escape}, 'a%20b%2F~%24-_.Z9 17', 'SigV4 URI encoding');

done_testing();
