# Authorization under faults (issue 9): Redis killed while requests need
# a decision the cache does not hold, and the catalog's paging for users
# who may see only part of it.
#
# 1. Redis down: a cached decision is still served, an uncached one (new
#    token, new repository) is 503 UNAVAILABLE, and the error log does not
#    grow with the number of refused requests; Redis back: 200 without
#    reloading nginx.
# 2. The catalog's pages and Link come from the names the user may pull:
#    a user without roles gets no name and no Link, with or without
#    "last"; a user with a role pages through its projects only.
#
# It runs its own redis-server (start_redis: a free port from
# TEST_NGINX_REDIS_PORT + 110 on, state under t/servroot-faults-auth/redis,
# AOF fsynced on every write so that the users survive kill -9), so
# killing it leaves the suite's Redis alone.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd ();
use File::Path qw(make_path remove_tree);
use Time::HiRes qw(sleep time);
use Registry::Harness qw(start_nginx read_file free_ports start_redis);
use Registry::Auth qw($AuthHttpConfig $AuthConfig admin remember_tokens);

my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} // 1984) + 110, 1);
my $rport = free_ports(($ENV{TEST_NGINX_REDIS_PORT} // 16379) + 110, 1);
my $root = Cwd::getcwd() . '/t/servroot-faults-auth';

plan skip_all => 'redis-server and redis-cli are needed'
    if system('command -v redis-server redis-cli >/dev/null 2>&1') != 0;

# --- a private redis-server (AOF fsynced on every write: the users
# survive kill -9) --------------------------------------------------------

my $redis;

# the admin CLI and redis-cli against it
sub fadmin {
    local $ENV{TEST_NGINX_REDIS_PORT} = $rport;
    return admin(@_);
}

remove_tree($root);
$redis = start_redis(port => $rport, root => "$root/redis", appendonly => 1);

my %T;
$T{$_} = fadmin('user', 'add', $_) for qw(fanobody faviewer fatwo fareg);
remember_tokens(values %T);
fadmin('project', 'add', $_) for qw(alpha fother fproj fproj-x);
fadmin('policy', 'add-role-to-user', 'registry-viewer', 'faviewer', '-n', 'fproj');
fadmin('policy', 'add-role-to-user', 'registry-viewer', 'fatwo', '-n', 'fproj');
fadmin('policy', 'add-role-to-user', 'registry-viewer', 'fatwo', '-n', 'fproj-x');
fadmin('policy', 'add-cluster-role-to-user', 'system:registry', 'fareg');
my $rb = fadmin('get', 'rolebindings', '-n', 'fproj');
ok $rb =~ /registry-viewer\s+faviewer/ && $rb =~ /registry-viewer\s+fatwo/
    && $rb !~ /fareg/, 'get rolebindings -n fproj: the two viewers' or diag $rb;
like fadmin('get', 'clusterrolebindings'), qr/system:registry\s+fareg/,
    'get clusterrolebindings: fareg';

# "fproj-x/y" sorts before "fproj/a" ('-' < '/'): the pages of a user of
# both projects must still come in the catalog's order
my @REPOS = qw(alpha/img fother/x fproj-x/y fproj/a fproj/b fproj/c);
$redis->cli('ZADD', 'repos', map { (0, $_) } @REPOS);

(my $http = $AuthHttpConfig) =~ s/127\.0\.0\.1:\$TEST_NGINX_REDIS_PORT/127.0.0.1:$rport/
    or die "no registry_redis in \$AuthHttpConfig\n";
my $ngx = start_nginx(port => $port, servroot => $root, clean => 0,
    root_location => 0, log_level => 'notice', config => $AuthConfig,
    http_config => $http . <<'EOF');
    registry_redis_timeout 1s;
    registry_auth_cache zone=faults_auth:1m valid=600s;
EOF
my $master = $ngx->{pid};

sub get {
    my ($path, $user) = @_;
    return $ngx->request('GET', $path, timeout => 10,
        headers => [$user ? (['Authorization', "Bearer $T{$user}"]) : ()]);
}

sub names {
    my ($r) = @_;
    my ($list) = $r->{body} =~ /^\{"repositories":\[(.*)\]\}$/s
        or return undef;
    return [$list =~ /"([^"]+)"/g];
}

# follows the Link headers from PATH; returns the names of every page and
# the links, or dies after more pages than there are repositories
sub walk {
    my ($path, $user) = @_;
    my (@names, @links);
    for (0 .. @REPOS + 1) {
        my $r = get($path, $user);
        die "GET $path: $r->{status} $r->{body}\n" if $r->{status} ne '200';
        my $n = names($r) // die "GET $path: $r->{body}\n";
        push @names, @$n;
        my $link = $r->{headers}{link} // return (\@names, \@links);
        push @links, $link;
        ($path) = $link =~ /^<([^>]+)>; rel="next"$/ or die "Link: $link\n";
        $path =~ s/%2F/\//gi;
    }
    die "GET $path: more pages than repositories\n";
}

my $UNAVAILABLE = qr/^\{"errors":\[\{"code":"UNAVAILABLE"/;

# --- the catalog: pages of the filtered list --------------------------

{
    my $r = get('/v2/_catalog?n=1', 'fanobody');
    is $r->{status}, 200, 'no roles: catalog 200';
    is $r->{body}, '{"repositories":[]}', 'no roles: no name';
    ok !exists $r->{headers}{link}, 'no roles: no Link'
        or diag $r->{headers}{link};

    $r = get('/v2/_catalog?n=1&last=alpha/img', 'fanobody');
    is $r->{body}, '{"repositories":[]}', 'no roles, last given: no name';
    ok !exists $r->{headers}{link}, 'no roles, last given: no Link'
        or diag $r->{headers}{link};

    my ($names, $links) = walk('/v2/_catalog?n=1', 'faviewer');
    is_deeply $names, [qw(fproj/a fproj/b fproj/c)],
        'one project: its repositories, one per page';
    is scalar(@$links), 2, 'one project: a Link on all pages but the last';
    is_deeply [grep { !/last=fproj(?:\/|%2F)[abc]>/i } @$links], [],
        'one project: every Link names one of its repositories';

    $r = get('/v2/_catalog?n=1&last=alpha/img', 'faviewer');
    is_deeply names($r), ['fproj/a'], 'one project, last elsewhere: its first';

    ($names) = walk('/v2/_catalog?n=2', 'fatwo');
    is_deeply $names, [qw(fproj-x/y fproj/a fproj/b fproj/c)],
        'two projects: in the catalog order, across pages';
    is_deeply names(get('/v2/_catalog', 'fatwo')), $names,
        'two projects: the pages make the whole list';

    ($names) = walk('/v2/_catalog?n=4', 'fareg');
    is_deeply $names, [@REPOS], 'everything visible: every repository, paged';
}

# --- Redis down: uncached decisions are 503 ---------------------------

my $N = 200;

{
    is get('/v2/', 'faviewer')->{status}, 200, 'Redis up: /v2/ 200';
    is get('/v2/fproj/a/tags/list', 'faviewer')->{status}, 200,
        'Redis up: tags 200';

    my $from = $ngx->log_size;
    $redis->kill;

    my $r = get('/v2/', 'faviewer');
    is $r->{status}, 200, 'Redis down: a cached decision still holds'
        or diag $r->{body};

    $r = get('/v2/', 'fatwo');
    is $r->{status}, 503, 'Redis down: a new token is 503';
    like $r->{body}, $UNAVAILABLE, 'Redis down: new token: UNAVAILABLE';

    $r = get('/v2/fproj/b/tags/list', 'faviewer');
    is $r->{status}, 503, 'Redis down: a new repository is 503';
    like $r->{body}, $UNAVAILABLE, 'Redis down: new repository: UNAVAILABLE';

    my %status;
    for my $i (1 .. $N) {
        $r = get("/v2/fproj/n$i/tags/list", 'faviewer');
        $status{ $r->{status} }++;
    }
    is_deeply \%status, { 503 => $N }, "Redis down: $N new repositories: 503";

    my $log = $ngx->error_log($from);
    my @lines = $ngx->log_lines($from);
    cmp_ok scalar(@lines), '<=', 10,
        "Redis down: $N refused requests, a bounded log"
        or diag scalar(@lines) . " lines, the first:\n"
               . join("\n", @lines[0 .. 9]);
    unlike $log, qr/\[(?:alert|crit|emerg)\]/, 'Redis down: no alert';

    $redis->start;

    my $deadline = time + 15;
    do {
        sleep 0.2;
        $r = get('/v2/fproj/b/tags/list', 'faviewer');
    } until $r->{status} eq '200' || time > $deadline;
    is $r->{status}, 200, 'Redis back: 200 without reloading nginx'
        or diag $r->{body};
    is get('/v2/', 'fatwo')->{status}, 200, 'Redis back: the new token 200';
    is read_file("$root/logs/nginx.pid") =~ s/\s+//gr, $master,
        'the same nginx master';

    $log = $ngx->error_log($from);
    like $log, qr/\[notice\].*authorizer .* answers again/,
        'Redis back: the recovery is logged';
}

$ngx->stop;

done_testing;
