# The worker's Redis connection (ngx_http_registry_redis.c): outage and
# recovery without restarting nginx, a stalled Redis that must not block
# the worker, the command timeout, a unix socket.
#
# It runs its own redis-server (a port of its own, state under
# t/servroot-redis/redis) so that stopping and stalling it leaves the
# suite's shared Redis alone.  GET /v2/_catalog needs Redis only (an
# empty Redis lists no repository), GET /v2/ needs neither; /healthz asks
# Redis first, then S3.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd ();
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(sleep time);
use Registry::Harness qw(start_nginx http_request parse_response read_file free_ports
    start_redis);

my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 20, 1);
my $rport = free_ports(($ENV{TEST_NGINX_REDIS_PORT} || 16379) + 20, 1);
my $s3port = $ENV{TEST_NGINX_S3_PORT} || 17480;
my $bucket = $ENV{TEST_NGINX_S3_BUCKET} || 'registry-test';
my $root = Cwd::getcwd() . '/t/servroot-redis';

# the request that needs Redis, the one that does not
my $NEEDS_REDIS = '/v2/_catalog';
my $NO_REDIS = '/v2/';

plan skip_all => 'redis-server and redis-cli are needed'
    if system('command -v redis-server redis-cli >/dev/null 2>&1') != 0;

# --- a private redis-server: DEBUG SLEEP stalls it (Redis 7 refuses
# DEBUG by default) ------------------------------------------------------

my $redis;

# --- requests ---------------------------------------------------------

sub get {
    my ($path, $timeout) = @_;
    my $t0 = time;
    my $r = http_request(port => $port, method => 'GET', path => $path,
        timeout => $timeout // 10);
    $r->{elapsed} = time - $t0;
    return $r;
}

# a request sent now and read later: it waits on Redis meanwhile
sub send_only {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        Proto => 'tcp', Timeout => 2) or die "connect: $@";
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    return { sock => $s, t0 => time };
}

sub read_later {
    my ($p, $timeout) = @_;
    my ($raw, $sel) = ('', IO::Select->new($p->{sock}));
    my $deadline = time + ($timeout // 10);
    while (time < $deadline && $sel->can_read($deadline - time)) {
        my $n = sysread($p->{sock}, my $buf, 65536);
        last unless $n;
        $raw .= $buf;
    }
    close $p->{sock};
    my $r = parse_response($raw, 0);
    $r->{elapsed} = time - $p->{t0};
    return $r;
}

# poll until the Redis request succeeds again (the reconnect backoff
# reaches 5 s during a long outage)
sub wait_up {
    my ($secs) = @_;
    my $deadline = time + $secs;
    my $r;
    while (1) {
        $r = get($NEEDS_REDIS, 3);
        return $r if $r->{status} eq '200' || time > $deadline;
        sleep 0.1;
    }
}

sub conf {
    my ($redis) = @_;
    return (
        http_config => <<"EOF",
    registry_redis $redis;
    registry_redis_timeout 1500ms;
    registry_s3_endpoint http://127.0.0.1:$s3port;
    registry_s3_bucket $bucket;
    registry_s3_location /_registry_s3/;
EOF
        config => <<"EOF",
        location = /healthz {
            registry_health;
        }

        location /v2/ {
            registry;
        }

        location /apis/ {
            registry;
        }

        location /_registry_s3/ {
            internal;
            proxy_pass http://127.0.0.1:$s3port/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
EOF
    );
}

my $UNAVAILABLE = qr/^\{"errors":\[\{"code":"UNAVAILABLE"/;

remove_tree($root);
$redis = start_redis(port => $rport, root => "$root/redis",
    config => ['enable-debug-command local']);
my $sock = $redis->{socket};

# notice: the recovery is logged at that level
my $ngx = start_nginx(port => $port, servroot => $root, clean => 0,
    root_location => 0, log_level => 'notice', conf("127.0.0.1:$rport"));
my $master = $ngx->{pid};

# --- up -------------------------------------------------------------------

my $r = wait_up(3);
is $r->{status}, 200, 'Redis up: 200' or diag $r->{body};

$r = get($NO_REDIS);
is $r->{status}, 200, "$NO_REDIS: 200";

# --- stopped, then back ---------------------------------------------------

$redis->stop;

$r = get($NEEDS_REDIS);
is $r->{status}, 503, 'Redis stopped: 503';
like $r->{body}, $UNAVAILABLE, 'Redis stopped: UNAVAILABLE error body';
cmp_ok $r->{elapsed}, '<', 0.4, 'Redis stopped: answered at once';

$r = get($NEEDS_REDIS);
is $r->{status}, 503, 'Redis still stopped: 503';

$r = get('/healthz');
is $r->{status}, 503, 'Redis stopped: /healthz 503';
like $r->{body}, qr/"UNAVAILABLE".*redis/, 'Redis stopped: /healthz names Redis';

$r = get($NO_REDIS);
is $r->{status}, 200, "Redis stopped: $NO_REDIS still 200";

# long enough for the backoff to grow: the reconnect must still happen
sleep 1.5;
$redis->start;

$r = wait_up(8);
is $r->{status}, 200, 'Redis back: 200 without restarting nginx'
    or diag $r->{body};
is read_file("$root/logs/nginx.pid") =~ s/\s+//gr, $master, 'same nginx master';

# --- stalled: the worker keeps serving ------------------------------------

# the stall is sent on a socket of our own and confirmed (a PING that gets
# no answer) before anything is measured: a busy machine may delay it
my $staller = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$rport")
    or die "redis at $rport: $!";
print $staller "DEBUG SLEEP 5\r\n";
for (1 .. 50) {
    my $probe = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$rport") or last;
    print $probe "PING\r\n";
    last unless IO::Select->new($probe)->can_read(0.1);
    sleep 0.05;
}

my $waiting = send_only($NEEDS_REDIS);
# a watch whose timeoutSeconds runs out before its first answer
my $watch = send_only('/apis/image.openshift.io/v1/namespaces/p/imagestreams'
    . '?watch=true&timeoutSeconds=1');
sleep 0.05;

$r = get($NO_REDIS, 2);
is $r->{status}, 200, "Redis stalled: $NO_REDIS 200";
cmp_ok $r->{elapsed}, '<', 0.75,
    "Redis stalled: $NO_REDIS answered while a request waits on Redis";

# --- ... and the command times out ----------------------------------------

$r = read_later($waiting, 5);
is $r->{status}, 503, 'Redis stalled: the waiting request times out: 503';
like $r->{body}, $UNAVAILABLE, 'timeout: UNAVAILABLE error body';
cmp_ok $r->{elapsed}, '>', 1.3, 'timeout: not before redis_timeout';
cmp_ok $r->{elapsed}, '<', 3, 'timeout: soon after redis_timeout';

$r = read_later($watch, 5);
is $r->{status}, 200,
    'Redis stalled: a watch whose time ran out first ends empty (200, not 503)'
    or diag $r->{body};

# still stalled: the reconnect is not up until Redis answers PING
$r = get($NEEDS_REDIS);
is $r->{status}, 503, 'still stalled: 503';
cmp_ok $r->{elapsed}, '<', 0.9, 'still stalled: answered at once';

$r = wait_up(8);
is $r->{status}, 200, 'stall over: 200' or diag $r->{body};

# --- the log: once per outage, nothing worse than error -------------------

my $log = $ngx->error_log;
my @lost = $ngx->log_lines(undef, qr/\[error\].*registry redis .*(?:connection lost|failed)/);
is scalar(@lost), 1, 'the outage is logged once' or diag $log;
like $log, qr/\[error\].*registry redis .*command timed out/, 'timeout logged';
my @restored = $ngx->log_lines(undef, qr/\[notice\].*registry redis .*connection restored/);
is scalar(@restored), 2, 'both recoveries logged' or diag $log;
unlike $log, qr/\[(?:alert|crit|emerg)\]/, 'no alert in the log';

$ngx->stop;
like $ngx->error_log, qr/exit/, 'nginx exited';
unlike $ngx->error_log, qr/open socket|\[alert\]/,
    'no socket left open at worker exit';

# --- a unix socket --------------------------------------------------------

$ngx = start_nginx(port => $port, servroot => $root, clean => 0,
    root_location => 0, log_level => 'notice', conf("unix:$sock"));

$r = wait_up(3);
is $r->{status}, 200, 'unix socket: 200' or diag $r->{body};

$redis->stop;
$r = get($NEEDS_REDIS);
is $r->{status}, 503, 'unix socket, Redis stopped: 503';

$redis->start;
$r = wait_up(8);
is $r->{status}, 200, 'unix socket, Redis back: 200';

$ngx->stop;

done_testing;
