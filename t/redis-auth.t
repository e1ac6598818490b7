# A Redis with a password (requirepass): the module sends AUTH first on
# its command connection and on the watch subscriber
# (registry_redis_password, or REGISTRY_REDIS_PASSWORD in nginx's
# environment), a missing or wrong password is a 503 with one clear log
# line that never holds a password, the outage it causes is logged once
# and not per request, and the admin CLI (scripts/registry) reaches that
# Redis with REDISCLI_AUTH.
#
# It runs its own redis-server (start_redis: a free port from
# TEST_NGINX_REDIS_PORT + 130 on, state under
# t/servroot-redis-auth/redis); GET /v2/_catalog needs Redis only.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd ();
use File::Path qw(make_path remove_tree);
use Time::HiRes qw(sleep time);
use Registry::Harness qw(start_nginx http_request read_file free_ports start_redis);
use Registry::Images qw(watch_open watch_status);
use Registry::Blobs qw($HttpConfig $Config);

my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 130, 1);
my $rport = free_ports(($ENV{TEST_NGINX_REDIS_PORT} || 16379) + 130, 1);
my $top = Cwd::getcwd();
my $root = "$top/t/servroot-redis-auth";

plan skip_all => 'redis-server and redis-cli are needed'
    if system('command -v redis-server redis-cli >/dev/null 2>&1') != 0;

sub random_hex {
    open my $fh, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
    read $fh, my $b, 16;
    return unpack 'H*', $b;
}

# a password per run; what a log must never show
my $PW = 'pw-' . random_hex();
my $WRONG = 'wrong-' . random_hex();

# --- a private redis-server with a password (redis-cli gets it in its
# environment, never on argv) ------------------------------------------

my $redis;

# --- nginx ------------------------------------------------------------

sub get {
    my ($path) = @_;
    return http_request(port => $port, method => 'GET', path => $path,
        timeout => 10);
}

sub wait_status {
    my ($want, $secs) = @_;
    my $deadline = time + $secs;
    my $r;
    while (1) {
        $r = get('/v2/_catalog');
        return $r if $r->{status} eq $want || time > $deadline;
        sleep 0.1;
    }
}

(my $http = $HttpConfig) =~ s/127\.0\.0\.1:\$TEST_NGINX_REDIS_PORT/127.0.0.1:$rport/
    or die "no registry_redis in \$HttpConfig\n";
sub conf {
    my ($password_line) = @_;
    return (http_config => "$http    registry_redis_timeout 1s;\n    $password_line\n",
        config => $Config);
}

# the error log lines since $from about the Redis connections (the
# 503 answers themselves are module.c's to log, or not)
my $REDIS_LINE = qr/\[(?:error|warn|crit|alert|emerg)\].*registry redis "/;

my $UNAVAILABLE = qr/^\{"errors":\[\{"code":"UNAVAILABLE"/;

remove_tree($root);
$redis = start_redis(port => $rport, root => "$root/redis", password => $PW);
delete $ENV{REGISTRY_REDIS_PASSWORD};

# --- no password: 503, and the log says what is missing -------------------

my $ngx = start_nginx(port => $port, servroot => $root, clean => 0,
    root_location => 0, log_level => 'notice', conf(''));

my $r = wait_status(503, 3);
is $r->{status}, 503, 'no password: 503';
like $r->{body}, $UNAVAILABLE, 'no password: UNAVAILABLE error body';

my $deadline = time + 5;
sleep 0.1 until $ngx->error_log =~ /wants a password/ || time > $deadline;
like $ngx->error_log, qr/registry redis "127\.0\.0\.1:$rport" wants a password \(registry_redis_password or REGISTRY_REDIS_PASSWORD\): NOAUTH/,
    'no password: the log names the directive and the variable';

# an outage is logged once, not once per request
my $from = $ngx->log_size;
$r = get('/v2/_catalog') for 1 .. 50;
is $r->{status}, 503, 'no password: still 503 after 50 requests';
sleep 1.2;    # a few reconnects, each refused again
my @lines = $ngx->log_lines($from, $REDIS_LINE);
cmp_ok scalar(@lines), '<=', 2,
    '50 requests and reconnects during the outage: at most 2 connection error lines'
    or diag join "\n", @lines;

# --- a wrong password: 503, logged without the password -------------------

$from = $ngx->log_size;
$ngx->reload(conf("registry_redis_password $WRONG;"));
$r = wait_status(503, 3);
is $r->{status}, 503, 'wrong password: 503';
like $r->{body}, $UNAVAILABLE, 'wrong password: UNAVAILABLE error body';
$deadline = time + 5;
sleep 0.1 until $ngx->error_log($from) =~ /authentication failed/ || time > $deadline;
like $ngx->error_log($from), qr/registry redis "127\.0\.0\.1:$rport" authentication failed: WRONGPASS/,
    'wrong password: "authentication failed" logged';

# --- the right password (directive): 200 -----------------------------------

$ngx->reload(conf("registry_redis_password $PW;"));
$r = wait_status(200, 5);
is $r->{status}, 200, 'right password (registry_redis_password): 200'
    or diag $r->{body};

# the watch subscriber authenticates too: its SUBSCRIBE would be refused
my $w = watch_open($port,
    '/apis/image.openshift.io/v1/namespaces/authproj/imagestreams?watch=true&timeoutSeconds=1');
is watch_status($w, 5), 200, 'right password: a watch (the subscriber) gets 200';
close $w->{sock};

# Redis killed and back: the reconnect sends AUTH again
$from = $ngx->log_size;
$redis->kill;
$r = get('/v2/_catalog');
is $r->{status}, 503, 'Redis killed: 503';
$r = get('/v2/_catalog') for 1 .. 30;
# each watch tries the subscriber again
for (1 .. 10) {
    my $w = watch_open($port,
        '/apis/image.openshift.io/v1/namespaces/authproj/imagestreams?watch=true&timeoutSeconds=1');
    watch_status($w, 2);
    close $w->{sock};
}
$redis->start;
$r = wait_status(200, 8);
is $r->{status}, 200, 'Redis back: 200 (AUTH on the new connection)';
@lines = $ngx->log_lines($from, $REDIS_LINE);
cmp_ok scalar(@lines), '<=', 2, 'Redis killed, 31 requests and 10 watches: at most 2 connection error lines'
    or diag join "\n", @lines;
like $ngx->error_log($from), qr/connection restored/, 'the recovery is logged';

$ngx->stop;

# --- the right password from the environment (REGISTRY_REDIS_PASSWORD) -----

{
    # the harness passes REGISTRY_* on to nginx (env directives)
    local $ENV{REGISTRY_REDIS_PASSWORD} = $PW;
    $ngx = start_nginx(port => $port, servroot => $root, clean => 0,
        root_location => 0, log_level => 'notice', conf(''));
}
$r = wait_status(200, 5);
is $r->{status}, 200, 'right password (REGISTRY_REDIS_PASSWORD): 200'
    or diag $r->{body};
$ngx->stop;

my $log = read_file("$root/logs/error.log") // '';
unlike $log, qr/\Q$PW\E/, 'the error log never holds the password';
unlike $log, qr/\Q$WRONG\E/, 'the error log never holds the wrong password';

# --- the admin CLI --------------------------------------------------------

sub registry_cli {
    my ($pw, @args) = @_;
    local $ENV{REGISTRY_REDIS_PORT} = $rport;
    local $ENV{REDISCLI_AUTH} = $pw;
    delete $ENV{REDISCLI_AUTH} unless defined $pw;
    delete local $ENV{REGISTRY_REDIS_PASSWORD};
    delete local $ENV{REGISTRY_REDIS_SOCKET};
    my $cmd = join ' ', "'$top/scripts/registry'", map { "'$_'" } @args;
    my $out = `$cmd 2>&1`;
    return ($? >> 8, $out // '');
}

my $user = 'pwuser' . substr(random_hex(), 0, 8);
my ($rc, $out) = registry_cli($WRONG, 'user', 'add', $user);
isnt $rc, 0, 'admin CLI, wrong password: fails';
like $out, qr/refused the password/, 'admin CLI, wrong password: says so';
unlike $out, qr/\Q$WRONG\E/, 'admin CLI, wrong password: not echoed';

($rc, $out) = registry_cli($PW, 'user', 'add', $user);
is $rc, 0, 'admin CLI with REDISCLI_AUTH: user add succeeds' or diag $out;
like $out, qr/^sha256~[A-Za-z0-9_-]{43}$/m, 'admin CLI: prints the token';
like $out, qr/\n\z/, 'admin CLI: the output ends with a newline';
like $redis->cli('SISMEMBER', 'auth:users', $user), qr/^1$/m,
    'admin CLI: the user is in Redis';

($rc, $out) = registry_cli($PW, 'get', 'users');
is $rc, 0, 'admin CLI: get users succeeds';
like $out, qr/^\Q$user\E\s+1\s+<none>\n/m, 'admin CLI: get users lists the user, line ended';

done_testing;
