# Authorization across requests and time (Registry::Harness): a revoked
# token and a removed role stop working once the cache lifetime is over,
# the cache survives a reload and stays bounded, the example external
# authorizer (conf/authorizer-proxy.conf) against a stand-in service, and
# no token in the module's own log lines even at debug level.
#
# Projects aproj, aother, apub, anew; users auth* (t/lib/Registry/Auth.pm).
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use Time::HiRes qw(sleep);
use Registry::Harness qw(start_nginx read_file free_ports start_redis);
use Registry::Auth qw($AuthHttpConfig $AuthConfig admin setup_people basic
    leaked_tokens remember_tokens redis_cli);

my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 10, 2);

# a Redis of its own: the users, projects and cluster roles
# of Registry::Auth are made from scratch by each auth test file, which
# would undo one another's run side by side (prove -j)
my $redis = start_redis(port => free_ports(($ENV{TEST_NGINX_REDIS_PORT} || 16379) + 70, 1));
$ENV{TEST_NGINX_REDIS_PORT} = $redis->{port};
my $T = setup_people();
# repositories for the catalog (the suite's Redis is flushed per run)
redis_cli('ZADD', 'repos', 0, $_) for qw(aproj/listed aother/hidden);
my $BAD_TOKEN = 'sha256~neverIssuedEither00000000000000000000000000';
remember_tokens($BAD_TOKEN);
my @used = (values(%$T), $BAD_TOKEN);

my $http = $AuthHttpConfig . <<'EOF';
    log_format registry '$remote_addr $registry_user "$request" $status';
EOF
my $server = $AuthConfig;

sub registry {
    my (%o) = @_;
    my $root = getcwd() . "/t/servroot-auth-flow-$o{name}";
    return start_nginx(port => $port, servroot => $root, root_location => 0,
        log_level => $o{log_level} // "info",
        http_config => $http . ($o{http} // '')
            . "    access_log $root/logs/access.log registry;\n",
        config => $o{config} // $server);
}

sub get {
    my ($ngx, $path, $auth, $method) = @_;
    return $ngx->request($method // 'GET', $path,
        headers => [$auth ? (['Authorization', $auth]) : ()]);
}

my $pull = '/v2/aproj/app/manifests/latest';

# 1. revocation and role changes: effective once the cache lifetime ends
{
    my $ngx = registry(name => 'revoke', http => "    registry_auth_cache zone=auth:1m valid=3s;\n");
    my $bob = admin('token', 'add', 'authbob');
    remember_tokens($bob);
    push @used, $bob;

    is get($ngx, $pull, "Bearer $bob")->{status}, 404, 'a second token of bob pulls';
    is get($ngx, $pull, "Bearer $T->{authalice}")->{status}, 404, 'alice pulls';
    my $t0 = time;
    admin('token', 'revoke', $bob);
    admin('policy', 'remove-role-from-user', 'registry-editor', 'authalice', '-n', 'aproj');
    SKIP: {
        skip 'too slow to see the cached decision', 2 if time - $t0 >= 2;
        is get($ngx, $pull, "Bearer $bob")->{status}, 404, 'revoked token: cached decision still holds';
        is get($ngx, $pull, "Bearer $T->{authalice}")->{status}, 404, 'removed role: cached decision still holds';
    }
    is get($ngx, $pull, "Bearer $T->{authbob}")->{status}, 404, "bob's first token is not revoked";
    sleep 4;
    my $r = get($ngx, $pull, "Bearer $bob");
    is $r->{status}, 401, 'revoked token refused after the cache lifetime';
    like $r->{body}, qr/"UNAUTHORIZED"/, '... UNAUTHORIZED';
    is get($ngx, '/openshift/token', basic('x', $bob))->{status}, 401, '... also at the token endpoint';
    $r = get($ngx, $pull, "Bearer $T->{authalice}");
    is $r->{status}, 403, 'removed role refused after the cache lifetime';
    is get($ngx, '/v2/', "Bearer $T->{authalice}")->{status}, 200, '... alice still logs in';

    admin('policy', 'add-role-to-user', 'registry-editor', 'authalice', '-n', 'aproj');
    is get($ngx, '/v2/aother/app/manifests/latest', "Bearer $T->{authalice}")->{status}, 403,
        'a new question is never cached: alice cannot pull aother';
    admin('token', 'revoke', '--user', 'authdave');
    is get($ngx, '/v2/', "Bearer $T->{authdave}")->{status}, 401,
        'token revoke --user: refused at once when not cached';
    $ngx->stop;
}

# 2. a reload keeps the zone and its decisions
{
    my $ngx = registry(name => 'reload', http => "    registry_auth_cache zone=auth:1m valid=60s;\n");
    my $tok = admin('token', 'add', 'authcarol');
    remember_tokens($tok);
    push @used, $tok;
    is get($ngx, $pull, "Bearer $tok")->{status}, 404, 'carol pulls';
    admin('token', 'revoke', $tok);
    $ngx->reload;
    sleep 0.5;
    is get($ngx, $pull, "Bearer $tok")->{status}, 404, 'after a reload the cached decision is still there';
    is get($ngx, '/v2/aproj/other/manifests/latest', "Bearer $tok")->{status}, 401,
        '... and the revocation applies to new questions';
    $ngx->stop;
}

# 3. a small zone: entries are replaced, answers stay right
{
    my $ngx = registry(name => 'small', http => "    registry_auth_cache zone=auth:32k valid=60s;\n");
    my ($ok, $denied) = (0, 0);
    for my $i (1 .. 150) {
        $ok++ if get($ngx, "/v2/aproj/r$i/manifests/latest", "Bearer $T->{authalice}")->{status} == 404;
        $denied++ if get($ngx, "/v2/aproj/r$i/manifests/latest", "Bearer $T->{authpruner}")->{status} == 403;
    }
    is $ok, 150, '150 repositories allowed to alice through a 32k cache';
    is $denied, 150, '... and refused to a pruner';
    $ok = grep { get($ngx, "/v2/aproj/r$_/manifests/latest", "Bearer $T->{authalice}")->{status} == 404 } 1 .. 150;
    is $ok, 150, '... and again, partly from the cache';
    unlike $ngx->error_log, qr/\[(?:crit|alert|emerg)\]/, 'no critical error';
    $ngx->stop;
}

# 4. conf/authorizer-proxy.conf: an external service decides
{
    my $svc_port = $port + 1;
    my $svc_root = getcwd() . '/t/servroot-auth-flow-svc';
    my $svc = start_nginx(port => $svc_port, servroot => $svc_root,
        http_config => <<'EOF', config => <<'EOF' =~ s/\@LOG\@/$svc_root\/logs\/authz.log/r);
    log_format authz '$request_method $request_uri auth=$http_authorization '
                     'action=$http_x_registry_action repo=$http_x_registry_repository '
                     'project=$http_x_registry_project len=$content_length '
                     'te=$http_transfer_encoding cookie=$http_cookie';
EOF
    location = /authorize {
        access_log @LOG@ authz;
        if ($request_method != GET) {
            return 405;
        }
        if ($http_authorization = "Bearer svc-good") {
            add_header X-Registry-User svc-user always;
            return 200;
        }
        if ($http_authorization = "Bearer svc-lister") {
            add_header X-Registry-User svc-lister always;
            add_header X-Registry-Projects "aproj" always;
            return 200;
        }
        if ($http_authorization = "Bearer svc-broken") {
            return 503;
        }
        if ($http_authorization = "") {
            return 401;
        }
        return 403;
    }
EOF
    my $example = read_file(getcwd() . '/conf/authorizer-proxy.conf');
    ok $example =~ s{http://127\.0\.0\.1:9091/}{http://127.0.0.1:$svc_port/}, 'the example names a service URL';
    my $ngx = registry(name => 'proxy', http => "    registry_auth_cache zone=auth:1m valid=60s;\n",
        config => ($server =~ s{location = /_registry_auth \{.*?\}\n}{}sr) . $example);

    my $r = get($ngx, '/v2/', 'Bearer svc-good');
    is $r->{status}, 200, 'the service allows: 200';
    $r = $ngx->request('POST', '/v2/aproj/app/blobs/uploads/', body => 'x' x 100000,
        headers => [['Authorization', basic('someone', 'svc-good')], ['Cookie', 'session=secret'],
                    ['Content-Type', 'application/octet-stream']]);
    is $r->{status}, 202, 'a POST with a body and Basic credentials is allowed';
    is get($ngx, $pull, 'Bearer svc-bad')->{status}, 403, 'the service refuses: 403';
    $r = get($ngx, $pull);
    is $r->{status}, 401, 'no credentials: 401';
    like $r->{headers}{'www-authenticate'}, qr/^Bearer realm="http:\/\/localhost\/openshift\/token"/, '... with the challenge';
    $r = get($ngx, $pull, 'Bearer svc-broken');
    is $r->{status}, 503, 'the service answers 503: 503';
    like $r->{body}, qr/^\{"errors":\[\{"code":"UNAVAILABLE"/, '... UNAVAILABLE';
    like $ngx->error_log, qr/registry: authorizer "\/_registry_auth" answered 503/, '... logged';
    $r = get($ngx, '/v2/_catalog', 'Bearer svc-lister');
    is $r->{status}, 200, 'catalog for a lister';
    like $r->{body}, qr/^\{"repositories":\[("aproj\/[^"]+",?)*\]\}$/, '... only the projects the service named';
    like $r->{body}, qr/"aproj\/listed"/, '... which are listed';
    $r = get($ngx, '/v2/_catalog', 'Bearer svc-good');
    is $r->{body}, '{"repositories":[]}', 'catalog without X-Registry-Projects: empty';

    $svc->stop;
    $r = get($ngx, '/v2/aproj/x/manifests/latest', 'Bearer svc-good');
    is $r->{status}, 503, 'the service is down: 503';
    $ngx->stop;

    my $asked = read_file("$svc->{servroot}/logs/authz.log") // '';
    like $asked, qr{^GET /authorize auth=Bearer svc-good action=none repo=- project=- len=- te=- cookie=-$}m,
        'GET /v2/ asked as action none, nothing else';
    like $asked, qr{^GET /authorize auth=Bearer svc-good action=push repo=aproj/app project=aproj len=- te=- cookie=-$}m,
        'the POST asked as a GET with no body, Basic converted to Bearer, no cookie';
    like $asked, qr{^GET /authorize auth=- action=pull repo=aproj/app project=aproj}m,
        'anonymous: no Authorization header';
    like $asked, qr{^GET /authorize auth=Bearer svc-lister action=list repo=- project=-}m, 'the catalog asks list';
    my @posts = $asked =~ /action=push/g;
    is scalar @posts, 1, 'the service was asked once per question';
    my $access = read_file("$ngx->{servroot}/logs/access.log") // '';
    like $access, qr{^127\.0\.0\.1 svc-user "GET /v2/ HTTP/1\.1" 200$}m, 'the user named by the service is $registry_user';
}

# 5. debug level: the module's own lines never carry a token
{
    my $ngx = registry(name => 'debug', log_level => 'debug',
        http => "    registry_auth_cache zone=auth:1m valid=60s;\n");
    get($ngx, '/v2/', "Bearer $T->{authalice}");
    get($ngx, $pull, basic('u', $T->{authalice}));
    get($ngx, $pull, basic('u', $T->{authalice}));
    get($ngx, '/openshift/token', basic('u', $T->{authbob}));
    get($ngx, '/v2/aother/app/manifests/latest', "Bearer $T->{authbob}");
    $ngx->request('POST', "/v2/aproj/app/blobs/uploads/?mount=sha256:" . ('1' x 64) . "&from=aother/src",
        headers => [['Authorization', "Bearer $T->{authalice}"]]);
    $ngx->stop;
    my @lines = grep { /registry/ } split /\n/, $ngx->error_log(0);
    ok scalar(@lines) > 10, 'the module logged at debug level (' . scalar(@lines) . ' lines)';
    my @bad = grep { my $l = $_; grep { index($l, substr($_, 7)) >= 0 } values %$T } @lines;
    is scalar @bad, 0, 'no token in a line of the module' or diag "leak in: " . substr($bad[0], 0, 80);
}

# 6. refusals of requests with large bodies: answered without reading
# them, and nothing left behind at shutdown
{
    my $ngx = registry(name => 'bodies', http => "    registry_auth_cache zone=auth:1m valid=60s;\n");
    my $big = 'z' x (8 * 1024 * 1024);
    my $r = $ngx->request('PATCH', '/v2/aother/app/blobs/uploads/0123456789abcdef0123456789abcdef',
        body => $big, headers => [['Authorization', "Bearer $T->{authalice}"],
                                   ['Content-Type', 'application/octet-stream']]);
    is $r->{status}, 403, 'PATCH of 8 MiB into a foreign project: 403';
    $r = $ngx->request('POST', "/v2/aproj/app/blobs/uploads/?digest=sha256:" . ('2' x 64),
        body => $big, headers => [['Content-Type', 'application/octet-stream']]);
    is $r->{status}, 401, 'anonymous monolithic POST of 8 MiB: 401';
    $r = $ngx->request('PUT', '/v2/aproj/app/manifests/v1', body => $big,
        headers => [['Authorization', "Bearer $BAD_TOKEN"], ['Content-Type', 'application/json']]);
    is $r->{status}, 401, 'PUT of 8 MiB with a bad token: 401';
    is get($ngx, '/v2/', "Bearer $T->{authalice}")->{status}, 200, 'the worker still answers';
    $ngx->stop;
}

# no request of the module's access phase or authorizer left open at exit
for my $log (glob(getcwd() . '/t/servroot-auth-flow-*/logs/error.log')) {
    my $text = read_file($log) // '';
    my @alerts = $text =~ /^(.*\[(?:alert|crit|emerg)\].*)$/mg;
    is scalar @alerts, 0, 'no alert in ' . ($log =~ s{.*/t/}{t/}r)
        or diag join "\n", @alerts[0 .. ($#alerts < 4 ? $#alerts : 4)];
}

# every token of this file, in every log this file's nginx wrote, except
# the debug run's (nginx itself dumps request headers at debug level)
my @logs = grep { !m{auth-flow-debug/} } glob(getcwd() . '/t/servroot-auth-flow-*/logs/*.log');
ok scalar(@logs) >= 6, scalar(@logs) . ' logs to check';
my @leaks = leaked_tokens(\@used, @logs);
is scalar @leaks, 0, 'no token in the logs' or diag join "\n", map { "$_->[1] in $_->[0]" } @leaks;

done_testing;
