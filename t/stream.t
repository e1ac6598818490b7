# Monolithic pushes streamed to S3 (stream.c): a POST ?digest= with a
# Content-Length of 5 MiB or more goes to S3 while the client sends it,
# never through nginx's client body temp file.  Checked against an
# instance with "registry_s3_stream off" (the store-and-forward path):
# half-way through a 64 MiB body, that one's worker holds a client body
# temp file, the streaming one does not.  The bytes read back the same; a
# wrong digest leaves no blob and no object; a 4 MiB push and a chunked
# one still take the old path.  Real nginx, Redis and RGW.
#
# Repositories: stest/* (this file only).
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd ();
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use Registry::Blobs qw(own_bucket $HttpConfig $Config d random_bytes redis_cli
    s3_objects blob_key curl);
use Registry::Harness qw(start_nginx read_file free_ports);

my $MiB = 1024 * 1024;
my $top = Cwd::getcwd();
my $base = free_ports(($ENV{TEST_NGINX_SERVER_PORT} // 1984) + 80, 10);

# a bucket of its own: it checks that no object is added bucket-wide,
# which another file pushing beside it (prove -j) would break
own_bucket('registry-test-stream');

my $On = start_nginx(port => $base, servroot => "$top/t/servroot-stream-on",
    root_location => 0, http_config => $HttpConfig, config => $Config);
my $Off = start_nginx(port => $base + 1, servroot => "$top/t/servroot-stream-off",
    root_location => 0, http_config => $HttpConfig . "    registry_s3_stream off;\n",
    config => $Config);

sub worker_of {
    my ($ngx) = @_;
    my ($w) = grep { (read_file("/proc/$_/stat") // '') =~ /^\d+ \(.*?\) \S+ $ngx->{pid} / }
        map { m{/proc/(\d+)/} ? $1 : () } glob '/proc/[0-9]*/stat';
    return $w;
}

# the files the worker holds open under its client body temp path
sub temp_files {
    my ($ngx) = @_;
    my $w = worker_of($ngx) or return -1;
    return scalar grep { (readlink($_) // '') =~ m{/client_body_temp/} } glob "/proc/$w/fd/*";
}

sub data_keys { +{ map { $_->{key} => $_->{size} } @{ s3_objects('data/') } } }

# sends the head and the first half of the body, looks, sends the rest
# (with $put: a session is opened first and the blob is its one PUT)
sub push_halves {
    my ($ngx, $repo, $blob, $digest, $put) = @_;
    my $line = "POST /v2/$repo/blobs/uploads/?digest=$digest";
    if ($put) {
        my $r = $ngx->request('POST', "/v2/$repo/blobs/uploads/");
        die "no session: $r->{status}\n" unless $r->{status} == 202;
        $line = "PUT $r->{headers}{location}?digest=$digest";
    }
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ngx->{port},
        Proto => 'tcp', Timeout => 10) or die "connect: $@\n";
    my $half = int(length($blob) / 2);
    print $sock "$line HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Type: application/octet-stream\r\nContent-Length: " . length($blob)
        . "\r\nConnection: close\r\n\r\n", substr($blob, 0, $half);
    sleep 0.5;
    my $held = temp_files($ngx);
    print $sock substr($blob, $half);
    local $/;
    my $answer = <$sock> // '';
    close $sock;
    my ($status) = $answer =~ m{^HTTP/1\.1 (\d+)};
    return ($status // 0, $held, $answer);
}

my $blob = random_bytes(64 * $MiB);
my $digest = d($blob);

{
    my ($status, $held) = push_halves($Off, 'stest/off', $blob, $digest);
    is $status, 201, 'stream off: 64 MiB monolithic push: 201';
    is $held, 1, '... half-way, the worker held a client body temp file';
}

{
    my ($status, $held, $answer) = push_halves($On, 'stest/on', $blob, $digest);
    is $status, 201, 'stream on: 64 MiB monolithic push: 201';
    is $held, 0, '... half-way, no client body temp file';
    like $answer, qr{^Location: /v2/stest/on/blobs/\Q$digest\E\r$}m, '... Location';
    like $answer, qr{^Docker-Content-Digest: \Q$digest\E\r$}m, '... Docker-Content-Digest';
}

{
    my $blob2 = random_bytes(64 * $MiB);
    my $d2 = d($blob2);
    my $t = time;
    my ($status, $held) = push_halves($On, 'stest/on', $blob2, $d2);
    is $status, 201, 'a fresh 64 MiB blob streamed: 201';
    is $held, 0, '... without a temp file';
    my $key = blob_key($d2);
    like $key, qr{^data/[0-9a-f]{32}$}, '... committed under its own object';
    my $file = "/tmp/registry-stream-$$";
    my ($rc, $code) = curl('-s', '-o', $file, '-w', '%{http_code}',
        $On->url("/v2/stest/on/blobs/$d2"));
    is $code, 200, '... GET: 200';
    my $back = read_file($file) // '';
    unlink $file;
    ok $back eq $blob2, '... the same bytes';
    is data_keys()->{$key}, 64 * $MiB, '... the object holds 64 MiB';
    is redis_cli('HGET', "blob:$d2", 'size'), 64 * $MiB, '... size recorded';
}

{
    my $blob3 = random_bytes(8 * $MiB);
    my $wrong = d($blob3 . 'x');
    my $before = data_keys();
    my ($status, $held, $answer) = push_halves($On, 'stest/on', $blob3, $wrong);
    is $status, 400, 'streamed push under a wrong digest: 400';
    like $answer, qr{"code":"DIGEST_INVALID"}, '... DIGEST_INVALID';
    is redis_cli('EXISTS', "blob:$wrong"), 0, '... no blob under the claimed digest';
    is redis_cli('EXISTS', 'blob:' . d($blob3)), 0, '... nor under the real one';
    is redis_cli('SISMEMBER', 'repo:stest/on:blobs', $wrong), 0, '... nothing linked';
    my $after = data_keys();
    my @new = grep { !exists $before->{$_} && $after->{$_} == 8 * $MiB } keys %$after;
    is scalar @new, 0, '... and no object left behind';
    my ($rc, $code) = curl('-s', '-o', '/dev/null', '-w', '%{http_code}',
        $On->url("/v2/stest/on/blobs/$wrong"));
    is $code, 404, '... GET of the claimed digest: 404';
}

{
    # the same blob again: linked, our duplicate object dropped
    my $before = data_keys();
    my ($status) = push_halves($On, 'stest/again', $blob, $digest);
    is $status, 201, 'a blob that exists, streamed again elsewhere: 201';
    my $after = data_keys();
    my @new = grep { !exists $before->{$_} } keys %$after;
    is scalar @new, 0, '... the duplicate object is gone';
    is redis_cli('SISMEMBER', 'repo:stest/again:blobs', $digest), 1, '... linked';
}

{
    # POST, then the whole blob in the session's PUT: streamed as well
    my $blob4 = random_bytes(32 * $MiB);
    my $d4 = d($blob4);
    my ($status, $held) = push_halves($On, 'stest/put', $blob4, $d4, 1);
    is $status, 201, 'a session\'s one PUT of 32 MiB, streamed: 201';
    is $held, 0, '... without a temp file';
    my $file = "/tmp/registry-stream-$$";
    my ($rc, $code) = curl('-s', '-o', $file, '-w', '%{http_code}',
        $On->url("/v2/stest/put/blobs/$d4"));
    my $back = read_file($file) // '';
    unlink $file;
    ok $code == 200 && $back eq $blob4, '... reads back the same bytes';

    my $before = data_keys();
    ($status) = push_halves($On, 'stest/put', $blob4 . 'y', d($blob4), 1);
    is $status, 400, 'a streamed PUT under a wrong digest: 400';
    my $after = data_keys();
    is scalar(grep { !exists $before->{$_} } keys %$after), 0, '... no object left behind';

    ($status, $held) = push_halves($On, 'stest/put2', $blob4, $d4, 1);
    is $status, 201, 'a PUT of a blob that exists: 201';
    is scalar(grep { !exists $before->{$_} } keys %{ data_keys() }), 0,
        '... stored nowhere again';
    is redis_cli('SISMEMBER', 'repo:stest/put2:blobs', $d4), 1, '... linked';
}

{
    # under 5 MiB and chunked: the old path, still right
    my $small = random_bytes(4 * $MiB);
    my ($status) = push_halves($On, 'stest/small', $small, d($small));
    is $status, 201, '4 MiB monolithic push (not streamed): 201';
    my $r = $On->request('GET', "/v2/stest/small/blobs/" . d($small), timeout => 30);
    ok $r->{status} == 200 && $r->{body} eq $small, '... reads back';
}

for my $ngx ($On, $Off) {
    my $log = $ngx->error_log;
    my @bad = grep { /\[(?:alert|crit|error|emerg)\]/ } split /\n/, $log;
    is scalar @bad, 0, "no error in the log of $ngx->{name}" or diag join "\n", @bad;
}

$_->stop for $On, $Off;

# S3 unreachable on the streamed path: 503 with an OCI error body, like
# every other S3 failure (not nginx's own 502 page)
{
    my $closed = $base + 9;
    (my $http = $HttpConfig) =~ s/127\.0\.0\.1:\$TEST_NGINX_S3_PORT/127.0.0.1:$closed/;
    (my $config = $Config) =~ s/127\.0\.0\.1:\$TEST_NGINX_S3_PORT/127.0.0.1:$closed/;
    my $down = start_nginx(port => $base + 2, servroot => "$top/t/servroot-stream-down",
        root_location => 0, http_config => $http, config => $config);
    my $blob = random_bytes(6 * $MiB);
    my $r = $down->request('POST', '/v2/stest/down/blobs/uploads/?digest=' . d($blob),
        body => $blob, timeout => 30);
    is $r->{status}, 503, 'S3 unreachable while streaming: 503';
    like $r->{body}, qr/^\{"errors":\[\{"code":"UNAVAILABLE"/, '... with an OCI error body';
    is $r->{headers}{'content-type'}, 'application/json', '... as JSON';
    $r = $down->request('GET', '/v2/');
    is $r->{status}, 200, 'the worker still serves';
    $down->stop;
}

done_testing;
