# Uploads under faults, each caused for real (issue 9):
#
#   - a chunked PATCH (or the PUT ?digest= that ends a session) whose body
#     arrives after the headers and holds a bad chunk-size line gets 400
#     and its connection closed: the worker's open files and connections
#     come back to what they were, client body temp files included;
#   - Redis killed (kill -9) while a big PATCH holds its session, then
#     restarted: the same upload continues from the offset GET reports
#     within 10 s;
#   - the nginx worker killed (kill -9) while a big PATCH holds its
#     session: the same;
#   - RGW's radosgw killed mid-PATCH: 503 UNAVAILABLE, the session stays
#     usable, and once RGW is back the push ends;
#   - every object the registry writes to S3 stays findable in Redis (a
#     blob's key, or "objects:pending"), also when Redis is killed in the
#     middle of a streamed monolithic push; a push whose record cannot be
#     written (Redis out of memory) is 503 and writes nothing.
#
# It runs its own redis-server (AOF, fsync always: what a restart finds
# is what was acknowledged) on a unix socket only (no port to collide
# with another run's), and its nginx
# on a free port from TEST_NGINX_SERVER_PORT + 100; the RGW is the
# suite's (var/test/rgw), restarted by scripts/rgw when killed.
#
# Repositories: fault/* (this file only).
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd ();
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use IO::Socket::UNIX;
use IO::Select;
use POSIX ();
use Time::HiRes qw(sleep time);
use Registry::Blobs qw($HttpConfig $Config d random_bytes s3 s3_objects uri_escape
    s3_uploads own_bucket);
use Registry::Harness qw(start_nginx read_file free_ports http_request start_redis);

plan skip_all => 'redis-server and redis-cli are needed'
    if system('command -v redis-server redis-cli >/dev/null 2>&1') != 0;

my $MiB = 1024 * 1024;
# the suite's bucket, for scripts/rgw; this file lists what it stored, so
# it stores in a bucket of its own (files beside it under prove -j push too)
my $suite_bucket = $ENV{TEST_NGINX_S3_BUCKET};
own_bucket('registry-test-faults');
my $top = Cwd::getcwd();
my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} // 1984) + 100, 1);
my $root = "$top/t/servroot-faults-uploads";
my $rgw_root = "$top/var/test/rgw";
my $rgw_pid_file = "$rgw_root/run/client.rgw.a.pid";

# --- a private redis-server that survives kill -9 with its data ----------
# (socket only, AOF fsynced on every write)

my $redis;

# one raw connection for fast polling (a redis-cli per poll is too slow
# to see a claim that lasts a second)
sub hget_fast {
    my ($key, $field) = @_;
    my $s = IO::Socket::UNIX->new(Peer => $redis->{socket}) or return undef;
    my $cmd = join '', "*3\r\n", map { '$' . length($_) . "\r\n$_\r\n" } 'HGET', $key, $field;
    print $s $cmd;
    my $line = <$s> // return undef;
    return undef unless $line =~ /^\$(\d+)/;
    my $n = $1;
    my $v = '';
    read($s, $v, $n + 2) or return undef;
    return substr($v, 0, $n);
}

# --- the radosgw of the suite's RGW ---------------------------------------

sub rgw_pid {
    my $p = read_file($rgw_pid_file) // return undef;
    chomp $p;
    return $p =~ /^\d+$/ && kill(0, $p) ? $p : undef;
}

my $rgw_killed = 0;

sub rgw_start {
    local $ENV{RGW_ROOT} = $rgw_root;
    local $ENV{RGW_PORT} = $ENV{TEST_NGINX_S3_PORT};
    local $ENV{RGW_BUCKET} = $suite_bucket;
    local $ENV{RGW_ACCESS_KEY} = $ENV{TEST_NGINX_S3_ACCESS_KEY};
    local $ENV{RGW_SECRET_KEY} = $ENV{TEST_NGINX_S3_SECRET_KEY};
    my $ok = system("'$top/scripts/rgw' start >>'$root/rgw-start.log' 2>&1") == 0;
    $rgw_killed = 0 if $ok;
    return $ok;
}

END {
    local $?;
    rgw_start() if $rgw_killed && !rgw_pid();
}

# --- nginx ----------------------------------------------------------------

remove_tree($root);
make_path($root);
$redis = start_redis(port => 0, root => "$root/redis", appendonly => 1);

(my $http = $HttpConfig) =~ s/127\.0\.0\.1:\$TEST_NGINX_REDIS_PORT/unix:$redis->{socket}/;
$http .= "    registry_redis_timeout 1s;\n";

my $ngx = start_nginx(port => $port, servroot => $root, clean => 0,
    root_location => 0, http_config => $http, config => $Config);

sub worker {
    my ($w) = grep { (read_file("/proc/$_/stat") // '') =~ /^\d+ \(.*?\) \S+ $ngx->{pid} / }
        map { m{/proc/(\d+)/} ? $1 : () } glob '/proc/[0-9]*/stat';
    return $w;
}

# the worker's open files: all, sockets, client body temp files
sub fds {
    my $w = worker() or return (-1, -1, -1);
    my @l = map { readlink($_) // '' } glob "/proc/$w/fd/*";
    return (scalar @l, scalar(grep { /^socket:/ } @l),
        scalar(grep { m{/client_body/} } @l));
}

sub req { http_request(port => $port, timeout => 60, @_) }

sub post {
    my ($repo) = @_;
    my $r = req(method => 'POST', path => "/v2/$repo/blobs/uploads/");
    die "POST: $r->{status} $r->{body}\n" unless $r->{status} eq '202';
    return $r->{headers}{location};
}

sub id_of { ($_[0] // '') =~ m{/blobs/uploads/([0-9a-f]{32})$} ? $1 : '' }

sub patch {
    my ($loc, $data, $from, %o) = @_;
    return req(method => 'PATCH', path => $loc, body => $data, %o,
        headers => [['Content-Type', 'application/octet-stream'],
                    ['Content-Range', "$from-" . ($from + length($data) - 1)]]);
}

sub put {
    my ($loc, $digest, $data) = @_;
    return req(method => 'PUT', path => "$loc?digest=$digest", body => $data // '',
        headers => [['Content-Type', 'application/octet-stream']]);
}

# where the session is, from GET's Range ("0-0" is offset 0 here: the
# offsets of this file are 0 or many MiB)
sub offset_of {
    my ($loc) = @_;
    my $r = req(method => 'GET', path => $loc, timeout => 5);
    return undef unless $r->{status} eq '204'
        && ($r->{headers}{range} // '') =~ /^0-(\d+)$/;
    return $1 ? $1 + 1 : 0;
}

# a PATCH sent by a child, so that the test can cause a fault meanwhile;
# wait_patch() gives its status (0: no answer, the connection was closed)
sub patch_child {
    my ($loc, $data, $from) = @_;
    pipe my $rd, my $wr or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $rd;
        my $r = patch($loc, $data, $from, timeout => 120);
        my ($code) = ($r->{body} // '') =~ /"code":"([A-Z_]+)"/;
        print $wr ($r->{status} || 0), ' ', ($code // ''), "\n";
        close $wr;
        POSIX::_exit(0);    # not exit: END blocks would stop what the parent runs
    }
    close $wr;
    return [$pid, $rd];
}

sub wait_patch {
    my ($kid) = @_;
    my $line = readline($kid->[1]) // '0';
    waitpid $kid->[0], 0;
    chomp $line;
    return split / /, $line, 2;
}

sub wait_busy {
    my ($id, $secs) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        my $b = hget_fast("upload:$id", 'busy');
        return 1 if defined $b && length $b;
        sleep 0.005;
    }
    return 0;
}

# The same upload goes on: GET says where it is, a 1 MiB chunk from there
# is accepted.  Returns the seconds it took (undef: not within $limit)
# and the last refusal.
sub resume_within {
    my ($loc, $blob, $limit) = @_;
    my $t0 = time;
    my $last = '';
    while (time - $t0 < $limit) {
        my $off = offset_of($loc);
        # the interrupted request's commit may still land after its 503
        # (sent before Redis stalled, run when it goes on): all there
        return (time - $t0, $off) if defined $off && $off >= length $blob;
        if (defined $off) {
            my $r = patch($loc, substr($blob, $off, $MiB), $off, timeout => 10);
            return (time - $t0, $off + $MiB) if $r->{status} eq '202';
            $last = "PATCH at $off: $r->{status} $r->{body}";
        } else {
            $last = 'GET of the session failed';
        }
        sleep 0.2;
    }
    return (undef, $last);
}

# the rest of the blob from $off, the PUT, and the bytes read back
sub finish_upload {
    my ($loc, $repo, $blob, $off, $what) = @_;
    my $r;
    if ($off < length $blob) {
        $r = patch($loc, substr($blob, $off), $off);
        is $r->{status}, 202, "$what: the rest from $off: 202" or diag $r->{body};
    }
    $r = put($loc, d($blob));
    is $r->{status}, 201, "$what: PUT: 201" or diag $r->{body};
    $r = req(method => 'GET', path => "/v2/$repo/blobs/" . d($blob), timeout => 120);
    ok $r->{status} eq '200' && d($r->{body}) eq d($blob), "$what: the blob reads back whole";
}

# every data/ object and open multipart upload this file made: a blob's
# key, or pending in Redis, or (multipart) a live session's
my %before_objects = map { $_->{key} => 1 } @{ s3_objects('data/') };
my %before_uploads = map { $_ => 1 } @{ s3_uploads('data/') };

# A worker killed, Redis lost with the record unanswered, or S3 lost,
# between creating a multipart upload and recording it in the session
# leaves that upload behind, empty (parts are sent only once it is
# recorded), for the collector; only the sessions of those faults may,
# and never one that holds a part
our %may_leave;

sub empty_mpu {
    my ($key, $upload_id) = @_;
    my $l = s3('GET', "$key?uploadId=" . uri_escape($upload_id));
    return $l->{status} eq '200' && $l->{body} !~ m{<Part>};
}

sub unfindable {
    my %known;
    for my $k (split /\n/, $redis->cli('--scan', '--pattern', 'blob:sha256:*')) {
        next if $k =~ /:links$/;
        my $key = $redis->cli('HGET', $k, 'key');
        $known{$key} = 1 if length $key;
    }
    $known{$_} = 1 for split /\n/, $redis->cli('ZRANGE', 'objects:pending', 0, -1);
    my @lost = grep { !$before_objects{$_} && !$known{$_} }
        map { $_->{key} } @{ s3_objects('data/') };
    # a multipart upload in progress is findable through the session that
    # records its id, or (a monolithic push) through objects:pending; a
    # blob's key does not account for another multipart upload to it
    my %pending = map { $_ => 1 } split /\n/, $redis->cli('ZRANGE', 'objects:pending', 0, -1);
    my $list = s3('GET', '?prefix=' . uri_escape('data/') . '&uploads=');
    while ($list->{body} =~ m{<Upload>(.*?)</Upload>}gs) {
        my $u = $1;
        my ($key) = $u =~ m{<Key>(.*?)</Key>};
        my ($upload_id) = $u =~ m{<UploadId>(.*?)</UploadId>};
        next if $before_uploads{$key};
        my ($id) = $key =~ m{^data/([0-9a-f]{32})$};
        my $recorded = $id ? $redis->cli('HGET', "upload:$id", 'mpu') : '';
        next if $pending{$key} || $recorded eq $upload_id;
        if ($may_leave{$key} && empty_mpu($key, $upload_id)) {
            diag "left for the collector, empty: $key (multipart $upload_id)";
            next;
        }
        push @lost, "$key (multipart $upload_id)";
    }
    return @lost;
}

my $r = req(method => 'GET', path => '/v2/');
is $r->{status}, 200, 'the registry answers';

# --- 1. a bad chunked body after a Redis step: 400 and closed -------------

# headers first, the body ~100 ms later (after the session is loaded from
# Redis): "5\r\nhello\r\nzz\r\n", "zz" being no chunk size; $big puts a
# 2 MiB chunk first, which nginx spools to a temp file
sub bad_chunked {
    my ($method, $path, $big) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        Proto => 'tcp', Timeout => 5) or die "connect: $@\n";
    print $s "$method $path HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Type: application/octet-stream\r\n"
        . "Transfer-Encoding: chunked\r\n\r\n";
    sleep 0.1;
    my $body = $big ? sprintf("%x\r\n", 2 * $MiB) . ('x' x (2 * $MiB)) . "\r\n" : '';
    print $s $body, "5\r\nhello\r\nzz\r\n";
    return $s;
}

# the answer, and whether the server then closed the connection
sub answer {
    my ($s, $secs) = @_;
    my ($raw, $eof, $sel) = ('', 0, IO::Select->new($s));
    my $deadline = time + $secs;
    while (time < $deadline && $sel->can_read($deadline - time)) {
        my $n = sysread($s, my $buf, 65536);
        if (!$n) { $eof = 1; last }
        $raw .= $buf;
    }
    my ($status) = $raw =~ m{^HTTP/1\.\d (\d+)};
    return ($status // 0, $eof);
}

{
    my $loc = post('fault/chunk');
    my $put = post('fault/chunk');
    sleep 0.3;
    my ($files0, $socks0, $temp0) = fds();
    cmp_ok $files0, '>', 0, "the worker's open files: $files0";

    my (@sockets, %status, $closed);
    my @cases = ((['PATCH', $loc, 0]) x 12, (['PATCH', $loc, 1]) x 3,
        (['PUT', "$put?digest=" . d('x'), 0]) x 4, (['PUT', "$put?digest=" . d('x'), 1]) x 2);
    for my $c (@cases) {
        my $s = bad_chunked(@$c);
        my ($status, $eof) = answer($s, 5);
        $status{$status}++;
        $closed++ if $eof;
        push @sockets, $s;    # kept open by the client: the server must close
    }
    is_deeply \%status, { 400 => scalar @cases },
        scalar(@cases) . ' bad chunked bodies after a Redis step: 400 each';
    is $closed // 0, scalar @cases, '... and each connection closed by the server';
    # a closed connection may linger (nginx's lingering_timeout, 5 s) while
    # the machine is busy; a leaked one never goes
    my ($files, $socks, $temp);
    my $settle = time + 8;
    do {
        sleep 0.25;
        ($files, $socks, $temp) = fds();
    } until ($files <= $files0 && $socks <= $socks0 && !$temp) || time > $settle;
    cmp_ok $files, '<=', $files0, "... the worker holds no more files than before ($files, was $files0)";
    cmp_ok $socks, '<=', $socks0, "... nor sockets ($socks, was $socks0)";
    is $temp, 0, '... nor a client body temp file';
    close $_ for @sockets;

    $r = req(method => 'GET', path => $loc);
    is $r->{status}, 204, 'the session is still there';
    is $r->{headers}{range}, '0-0', '... untouched';
    my $log = $ngx->error_log;
    unlike $log, qr/buffered to a temporary file/, 'no "buffered to a temporary file" warning';
}

# --- 2. Redis killed mid-PATCH, restarted ---------------------------------

my $blob = random_bytes(64 * $MiB + 3 * $MiB);
my $first = substr($blob, 0, 64 * $MiB);

{
    my $loc = post('fault/redis');
    my $id = id_of($loc);
    # killed with the record of its multipart upload unanswered: it stays
    $may_leave{"data/$id"} = 1;
    my $kid = patch_child($loc, $first, 0);
    ok wait_busy($id, 60), 'Redis: a 64 MiB PATCH holds its session (sending its part)';
    $redis->kill;
    # long enough for the PATCH to fail (its commit finds no Redis)
    sleep 5;
    $redis->start;
    is $redis->cli('EXISTS', "upload:$id"), 1, '... Redis killed and restarted with the session';
    my ($status, $code) = wait_patch($kid);
    ok $status =~ /^(?:202|503|0)$/, "... the interrupted PATCH: $status $code (202, 503 or closed; never 500)";
    my ($took, $off) = resume_within($loc, $blob, 10);
    ok defined $took, '... the same upload continues from the offset GET reports within 10 s'
        . (defined $took ? sprintf(' (%.1f s)', $took) : '') or diag $off;
    finish_upload($loc, 'fault/redis', $blob, $off, 'Redis killed') if defined $took;
}

# --- 3. the worker killed mid-PATCH ---------------------------------------

{
    my $blob = random_bytes(64 * $MiB + 3 * $MiB);
    my $loc = post('fault/worker');
    $may_leave{'data/' . id_of($loc)} = 1;
    my $id = id_of($loc);
    my $kid = patch_child($loc, substr($blob, 0, 64 * $MiB), 0);
    ok wait_busy($id, 60), 'worker: a 64 MiB PATCH holds its session';
    my $w = worker();
    kill 'KILL', $w;
    my ($status) = wait_patch($kid);
    is $status, 0, "... worker $w killed: the client's connection is closed";
    my ($took, $off) = resume_within($loc, $blob, 10);
    ok defined $took, '... the same upload continues from the offset GET reports within 10 s'
        . (defined $took ? sprintf(' (%.1f s)', $took) : '') or diag $off;
    finish_upload($loc, 'fault/worker', $blob, $off, 'worker killed') if defined $took;
    my @crit = grep { /\[(?:alert|crit|emerg)\]/ && !/exited on signal 9/ } split /\n/, $ngx->error_log;
    is scalar @crit, 0, '... nothing worse than the kill in the log' or diag join "\n", @crit;
}

# --- 4. RGW's radosgw killed mid-PATCH ------------------------------------

SKIP: {
    # nothing else may use the suite's RGW while it is down (prove -j)
    Registry::Harness::exclusive_services();
    skip "no radosgw pid file under $rgw_root", 10 unless rgw_pid();
    my $blob = random_bytes(64 * $MiB + 3 * $MiB);
    my $loc = post('fault/rgw');
    $may_leave{'data/' . id_of($loc)} = 1;
    my $id = id_of($loc);
    my $kid = patch_child($loc, substr($blob, 0, 64 * $MiB), 0);
    ok wait_busy($id, 60), 'RGW: a 64 MiB PATCH holds its session';
    kill 'KILL', rgw_pid();
    $rgw_killed = 1;
    my ($status, $code) = wait_patch($kid);
    is "$status $code", '503 UNAVAILABLE', '... radosgw killed: 503 UNAVAILABLE';
    my $off = offset_of($loc);
    is $off, 0, '... GET: the session is where it was';
    $r = patch($loc, substr($blob, 0, 6 * $MiB), 0);
    is $r->{status}, 503, '... a part-sized chunk while RGW is down: 503 (not 409: no claim left)';
    my $small = random_bytes(6 * $MiB);
    $r = req(method => 'POST', path => '/v2/fault/rgw/blobs/uploads/?digest=' . d($small),
        body => $small, headers => [['Content-Type', 'application/octet-stream']]);
    is $r->{status}, 503, '... a monolithic push: 503';
    like $r->{body}, qr/^\{"errors":\[\{"code":"UNAVAILABLE"/, '... with an OCI error body';
    my $t0 = time;
    ok rgw_start(), 'radosgw restarted (scripts/rgw start)';
    note sprintf 'radosgw back in %.1f s', time - $t0;
    finish_upload($loc, 'fault/rgw', $blob, 0, 'RGW back');
}
Registry::Harness::shared_services();

# --- 5. orphans: Redis killed during a streamed push; Redis out of memory --

# a streamed (>= 5 MiB) monolithic push, sent in two halves: Redis dies
# between them, after the object key was recorded and S3 has started
{
    my $blob = random_bytes(12 * $MiB);
    my $pending0 = $redis->cli('ZCARD', 'objects:pending');
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        Proto => 'tcp', Timeout => 5) or die "connect: $@\n";
    print $s 'POST /v2/fault/orphan/blobs/uploads/?digest=' . d($blob) . " HTTP/1.1\r\n"
        . "Host: localhost\r\nContent-Type: application/octet-stream\r\n"
        . 'Content-Length: ' . length($blob) . "\r\nConnection: close\r\n\r\n",
        substr($blob, 0, 6 * $MiB);
    my $deadline = time + 10;
    sleep 0.01 until $redis->cli('ZCARD', 'objects:pending') > $pending0 || time > $deadline;
    cmp_ok $redis->cli('ZCARD', 'objects:pending'), '>', $pending0,
        'a streamed push records its object key before S3 sees its bytes';
    sleep 0.3;
    $redis->kill;
    print $s substr($blob, 6 * $MiB);
    my ($status) = answer($s, 30);
    close $s;
    is $status, 503, '... Redis killed before its commit: 503';
    $redis->start;
    is $redis->cli('EXISTS', 'blob:' . d($blob)), 0, '... no blob';
}

{
    my $blob = random_bytes(6 * $MiB);
    my $objects = scalar @{ s3_objects('data/') };
    $redis->cli('CONFIG', 'SET', 'maxmemory', '1');
    $r = req(method => 'POST', path => '/v2/fault/oom/blobs/uploads/?digest=' . d($blob),
        body => $blob, headers => [['Content-Type', 'application/octet-stream']]);
    $redis->cli('CONFIG', 'SET', 'maxmemory', '0');
    is $r->{status}, 503, 'Redis out of memory: a monolithic push is 503';
    is scalar @{ s3_objects('data/') }, $objects, '... and stores nothing';
}

# --- 6. a part stored, its commit lost: the retry goes on with it --------

# Redis stops answering (SIGSTOP) once the session's multipart upload
# exists, so its part reaches S3 and the commit times out; the retry must
# continue that multipart upload (its id is in the session), or it would be
# left behind with the part's bytes and nothing in Redis naming it
{
    my $blob = random_bytes(40 * $MiB);
    # Redis was restarted just before: the worker reconnects with a backoff
    my $loc;
    for (1 .. 60) {
        my $r = req(method => 'POST', path => '/v2/fault/mpu/blobs/uploads/');
        if ($r->{status} eq '202') { $loc = $r->{headers}{location}; last }
        sleep 0.25;
    }
    die "POST fault/mpu: no 202 within 15 s\n" unless $loc;
    my $id = id_of($loc);
    my $kid = patch_child($loc, $blob, 0);
    my $seen = 0;
    my $deadline = time + 60;
    while (!$seen && time < $deadline) {
        my $l = s3('GET', '?prefix=' . uri_escape("data/$id") . '&uploads=');
        $seen = $l->{body} =~ m{<UploadId>};
        sleep 0.01 unless $seen;
    }
    ok $seen, 'a part on its way: its multipart upload exists';
    sleep 0.05;
    my $rp = $redis->pid;
    kill 'STOP', $rp;
    my ($status) = wait_patch($kid);
    kill 'CONT', $rp;
    ok $status eq '503' || $status eq '0',
        "... Redis stopped before the part's commit: 503 or closed ($status)";
    my ($took, $off) = resume_within($loc, $blob, 15);
    ok defined $took, '... the upload continues once Redis answers' or diag $off;
    finish_upload($loc, 'fault/mpu', $blob, $off, 'part lost') if defined $took;
}

my @lost = unfindable();
is scalar @lost, 0, 'every object and multipart upload this file made is findable in Redis'
    or diag "unfindable: @lost\n", join "\n", map {
        my ($id) = m{^data/([0-9a-f]{32})};
        my $access = read_file("$root/logs/access.log") // '';
        $id ? (grep { /$id/ } split(/\n/, $access), $ngx->log_lines(0, qr/$id/)) : ()
    } @lost;

my @bad = grep { /\[(?:alert|emerg)\]/ && !/exited on signal 9/ } split /\n/, $ngx->error_log;
is scalar @bad, 0, 'no alert in the log' or diag join "\n", @bad;

$ngx->stop;
done_testing;
