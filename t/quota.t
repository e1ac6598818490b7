# Project quotas (issue 12), set and read with scripts/registry quota,
# against real nginx, Redis and RGW:
#
#   - storage counts each blob once per project, however many of its
#     repositories link it, and gives it back when the last one unlinks;
#   - a monolithic push that would exceed it is refused (403 DENIED,
#     naming the quota) before its body is stored; so is a PATCH whose
#     session would; two pushes that each fit but not together: the
#     second is refused at its commit and its object deleted;
#   - a mount into a full project starts a session instead;
#   - openshift.io/imagestreams: a push by tag that would make one more
#     stream is refused, a push by digest or to an existing stream is
#     not; two new streams pushed at once with room for one: one is
#     refused; image-size: an image larger than the limit is refused;
#   - "none" removes a limit.
#
# It runs its own redis-server and uses a bucket of its own (it counts
# the bucket's objects).  Repositories: qt/*, qt2/* (this file only).
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd ();
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(sleep time);
use Registry::Blobs qw($HttpConfig $Config d random_bytes s3_objects own_bucket);
use Registry::Harness qw(start_nginx start_redis free_ports);
use Registry::Images qw(image push_image push_blob);

plan skip_all => 'redis-server and redis-cli are needed'
    if system('command -v redis-server redis-cli >/dev/null 2>&1') != 0;

my $KiB = 1024;
my $top = Cwd::getcwd();
own_bucket('registry-test-quota');
my $rport = free_ports(($ENV{TEST_NGINX_REDIS_PORT} // 16379) + 50, 1);
my $redis = start_redis(port => $rport);
my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} // 1984) + 150, 1);
(my $http = $HttpConfig) =~ s/\$TEST_NGINX_REDIS_PORT/$rport/;
my $ngx = start_nginx(port => $port, servroot => "$top/t/servroot-quota", root_location => 0,
    http_config => $http, config => $Config);

sub rcli {
    open my $fh, '-|', 'redis-cli', '-p', $rport, @_ or die "redis-cli: $!\n";
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    $out =~ s/\n\z//;
    return $out;
}

# scripts/registry quota ... against this file's Redis; (status, output)
sub quota {
    local $ENV{REGISTRY_REDIS_PORT} = $rport;
    local $ENV{REDISCLI_AUTH};
    delete $ENV{REDISCLI_AUTH};
    my $out = `'$top/scripts/registry' quota @_ 2>&1`;
    return ($? >> 8, $out);
}

sub used { rcli('GET', "project:$_[0]:storage") || 0 }
sub objects { scalar @{ s3_objects('data/') } }

sub denied {
    my ($r, $what, $name) = @_;
    is $r->{status}, 403, "$name: 403";
    like $r->{body}, qr/"code":"DENIED".*exceeded (?:quota|limit): \Q$what\E/,
        "... DENIED, naming $what" or diag $r->{body};
}

# --- the commands ----------------------------------------------------------

my ($rc, $out) = quota('set', 'qt', '--storage=100Ki', '--imagestreams=1', '--image-size=50Ki');
is $rc, 0, 'quota set qt --storage=100Ki --imagestreams=1 --image-size=50Ki' or diag $out;
like $out, qr/storage\s+0 \(0\)\s+100Ki \(102400\)/, '... prints storage: used 0, hard 100Ki';
like $out, qr{openshift\.io/imagestreams\s+0\s+1}, '... image streams: 0 of 1';
like $out, qr/image-size\s+-\s+50Ki \(51200\)/, '... and the image size limit';
($rc, $out) = quota('set', 'qt', '--storage=1.5x');
isnt $rc, 0, 'a bad quantity is refused';
like $out, qr/invalid quantity/, '... saying so';

# --- storage ---------------------------------------------------------------

my $a = random_bytes(60 * $KiB);
is push_blob($ngx, 'qt/a', $a)->{status}, 201, 'a 60 KiB blob pushed to qt/a';
is used('qt'), 60 * $KiB, '... storage used: 60 KiB';
is push_blob($ngx, 'qt/b', $a)->{status}, 201, 'the same blob pushed to qt/b';
is used('qt'), 60 * $KiB, '... counted once per project';
($rc, $out) = quota('get', 'qt');
like $out, qr/storage\s+60Ki \(61440\)\s+100Ki/, 'quota get: 60Ki of 100Ki';

my $objects = objects();
my $big = random_bytes(50 * $KiB);
denied(push_blob($ngx, 'qt/a', $big), 'storage', 'a 50 KiB monolithic push (60 + 50 > 100 KiB)');
is objects(), $objects, '... nothing was stored';
is rcli('EXISTS', 'blob:' . d($big)), 0, '... no blob';

# a session: its PATCH is refused when the session would not fit
my $loc = $ngx->request('POST', '/v2/qt/a/blobs/uploads/')->{headers}{location};
ok $loc, 'a session started (60 of 100 KiB used)';
my $part = random_bytes(30 * $KiB);
my $r = $ngx->request('PATCH', $loc, body => $part,
    headers => [['Content-Type', 'application/octet-stream'], ['Content-Range', '0-' . (30 * $KiB - 1)]]);
is $r->{status}, 202, '... a 30 KiB PATCH fits';
denied($ngx->request('PATCH', $loc, body => $part,
    headers => [['Content-Type', 'application/octet-stream'],
                ['Content-Range', 30 * $KiB . '-' . (60 * $KiB - 1)]]),
    'storage', '... another 30 KiB would not');
$ngx->request('DELETE', $loc);

# two monolithic pushes that fit one at a time but not together: both
# pass the check before their bodies, the second is refused at its commit
sub send_head {
    my ($repo, $blob) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
        or die "connect: $@\n";
    print $s "POST /v2/$repo/blobs/uploads/?digest=" . d($blob) . " HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Type: application/octet-stream\r\nContent-Length: " . length($blob)
        . "\r\nConnection: close\r\n\r\n" . substr($blob, 0, 1000);
    return $s;
}
{
    my ($b1, $b2) = (random_bytes(30 * $KiB), random_bytes(30 * $KiB));
    my $pending = rcli('ZCARD', 'objects:pending');
    my @s = (send_head('qt/a', $b1), send_head('qt/a', $b2));
    sleep 0.5;    # both checked (60 + 30 <= 100 KiB each)
    my @answers;
    for my $i (0, 1) {
        print { $s[$i] } substr(($b1, $b2)[$i], 1000);
        my $ans = do { local $/; readline $s[$i] } // '';
        close $s[$i];
        push @answers, $ans;
    }
    my @status = map { m{^HTTP/1\.1 (\d+)} ? $1 : 0 } @answers;
    is "@status", '201 403', 'two 30 KiB pushes that fit one at a time: the second is refused at its commit';
    like $answers[1], qr/exceeded quota: storage/, '... naming the quota';
    is used('qt'), 90 * $KiB, '... storage used: 90 KiB';
    is objects(), $objects + 1, '... only the first one\'s object stays';
    is rcli('ZCARD', 'objects:pending'), $pending, '... and no key stays pending';
}

# a mount into a full project starts a session instead
($rc, $out) = quota('set', 'qt2', '--storage=10Ki');
is push_blob($ngx, 'qt2/x', random_bytes(8 * $KiB))->{status}, 201, 'qt2 holds 8 of 10 KiB';
$r = $ngx->request('POST', '/v2/qt2/x/blobs/uploads/?mount=' . d($a) . '&from=qt/a');
is $r->{status}, 202, 'a mount of the 60 KiB blob into qt2: 202, a session instead';
is rcli('SISMEMBER', 'repo:qt2/x:blobs', d($a)), 0, '... nothing mounted';
$r = $ngx->request('POST', '/v2/qt/c/blobs/uploads/?mount=' . d($a) . '&from=qt/a');
is $r->{status}, 201, 'a mount within qt (the project has the blob): 201';
is used('qt'), 90 * $KiB, '... and adds nothing';

# unlinking gives storage back once the last repository lets go
is $ngx->request('DELETE', '/v2/qt/a/blobs/' . d($a))->{status}, 202, 'the 60 KiB blob deleted from qt/a';
is used('qt'), 90 * $KiB, '... still linked in qt/b and qt/c: still counted';
$ngx->request('DELETE', "/v2/qt/$_/blobs/" . d($a)) for 'b', 'c';
is used('qt'), 30 * $KiB, '... deleted from all of them: 30 KiB used';

# --- image streams and image size -------------------------------------------

($rc, $out) = quota('set', 'qt', '--storage=1Mi');
like $out, qr/storage\s+30Ki \(30720\)\s+1Mi \(1048576\)/, 'quota set qt --storage=1Mi: 30Ki of 1Mi';

my $i1 = image(layers => [random_bytes(10 * $KiB)]);
is push_image($ngx, 'qt/s1', 'v1', $i1)->{status}, 201, 'an image pushed as qt/s1:v1 (1 of 1 image stream)';
my $i2 = image(layers => [random_bytes(10 * $KiB)]);
denied(push_image($ngx, 'qt/s2', 'v1', $i2), 'openshift.io/imagestreams', 'qt/s2:v1, a second stream');
is $ngx->request('GET', '/v2/qt/s2/manifests/v1')->{status}, 404, '... not stored';
is push_image($ngx, 'qt/s2', $i2->{digest}, $i2)->{status}, 201, 'the same pushed by digest: no stream, 201';
is push_image($ngx, 'qt/s1', 'v2', $i2)->{status}, 201, '... and as qt/s1:v2, the stream that exists: 201';
my $fat = image(layers => [random_bytes(30 * $KiB), random_bytes(25 * $KiB)]);
denied(push_image($ngx, 'qt/s1', 'fat', $fat), 'image-size', 'an image of 55 KiB and more (limit 50Ki)');
($rc, $out) = quota('set', 'qt', '--image-size=none', '--storage=none');
unlike $out, qr/image-size\s+-\s+\d/, 'quota set --image-size=none --storage=none removes them';
is push_image($ngx, 'qt/s1', 'fat', $fat)->{status}, 201, '... then the same image: 201';
($rc, $out) = quota('get', 'qt');
like $out, qr{openshift\.io/imagestreams\s+1\s+1}, 'quota get: 1 of 1 image stream';

# two pushes of new image streams that fit one at a time but not
# together: the step that stores a manifest checks, atomically
{
    ($rc, $out) = quota('set', 'qt', '--imagestreams=2');
    my %img = map { $_ => image(layers => [random_bytes(2 * $KiB)]) } qw(c1 c2);
    for my $n (sort keys %img) {
        push_blob($ngx, "qt/$n", $_) for $img{$n}{config}, @{ $img{$n}{layers} };
    }
    my @s = map {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
            or die "connect: $@\n";
        $s;
    } 0, 1;
    my @n = sort keys %img;
    # both sent before the worker reads either
    for my $i (0, 1) {
        my $m = $img{ $n[$i] };
        print { $s[$i] } "PUT /v2/qt/$n[$i]/manifests/v1 HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Type: $m->{type}\r\nContent-Length: " . length($m->{manifest})
            . "\r\nConnection: close\r\n\r\n$m->{manifest}";
    }
    my @answers = map { my $a = do { local $/; readline $s[$_] } // ''; close $s[$_]; $a } 0, 1;
    my @status = sort map { m{^HTTP/1\.1 (\d+)} ? $1 : 0 } @answers;
    is "@status", '201 403', 'two new image streams at once, room for one: one is refused';
    like join('', @answers), qr/exceeded quota: openshift\.io\/imagestreams/, '... naming the quota';
    ($rc, $out) = quota('get', 'qt');
    like $out, qr{openshift\.io/imagestreams\s+2\s+2}, '... 2 of 2 image streams';
}

my @bad = grep { /\[(?:alert|crit|emerg)\]/ } split /\n/, $ngx->error_log;
is scalar(@bad), 0, 'no alert in the log' or diag join "\n", @bad;
$ngx->stop;
done_testing;
