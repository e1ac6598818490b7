# The data model's Lua is one Redis function library, "registry"
# (ngx_http_registry_module/redis/): every connection loads it before its
# first command, calls go by name (FCALL), and a library lost behind the
# registry's back (FUNCTION FLUSH, an empty Redis) is loaded again by the
# next connection.  Real nginx with the module, real Redis.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use Time::HiRes qw(sleep time);
use Registry::Blobs qw($HttpConfig $Config redis_cli);
use Registry::Harness qw(start_nginx free_ports start_redis);

# a Redis of its own: its checks count commands Redis-wide (INFO
# commandstats), which another file run beside it (prove -j) would add to
my $redis = start_redis(port => free_ports(($ENV{TEST_NGINX_REDIS_PORT} || 16379) + 30, 1));
$ENV{TEST_NGINX_REDIS_PORT} = $redis->{port};

my $ngx = start_nginx(port => free_ports(($ENV{TEST_NGINX_SERVER_PORT} // 1984) + 50, 1),
    servroot => getcwd() . '/t/servroot-functions', root_location => 0,
    http_config => $HttpConfig, config => $Config);

sub calls {
    my ($cmd) = @_;
    my $stats = redis_cli('INFO', 'commandstats');
    return $stats =~ /^cmdstat_$cmd:calls=(\d+)/m ? $1 : 0;
}

sub library { scalar redis_cli('FUNCTION', 'LIST', 'LIBRARYNAME', 'registry') }

# the same text as the module's: what scripts/lib/admin.sh loads
my $text = `sh ngx_http_registry_module/redis/library`;
my @files = grep { !m{/lib\.lua$} } glob 'ngx_http_registry_module/redis/*.lua';
is scalar(() = $text =~ /register_function/g), scalar @files,
    'one function per file';

my $r = $ngx->request('GET', '/v2/fntest/none/tags/list');
is $r->{status}, 404, 'answered (NAME_UNKNOWN)';
like library(), qr/list_page/, 'the library is loaded on connect';
ok calls('fcall') >= 1, 'functions are called by name';
is calls('eval') + calls('evalsha'), 0, 'no script text is sent';

redis_cli('FUNCTION', 'FLUSH');
unlike library(), qr/list_page/, 'flushed';
$r = $ngx->request('GET', '/v2/fntest/none/tags/list');
is $r->{status}, 503, 'a function gone: 503 at once';
like $r->{body}, qr/"UNAVAILABLE"/, 'as an OCI error';

my ($t0, $status) = (time, 0);
while (time - $t0 < 5) {
    $status = $ngx->request('GET', '/v2/fntest/none/tags/list')->{status};
    last if $status == 404;
    sleep 0.1;
}
is $status, 404, 'answered again after the reconnect';
like library(), qr/list_page/, 'the library is back';

my $missing = () = $ngx->error_log =~ /function library missing/g;
ok $missing >= 1 && $missing <= 2, "the loss logged once per worker ($missing)";
unlike $ngx->error_log, qr/\[(?:alert|crit)\]/, 'no alerts';
$ngx->stop;

# the admin commands call the same library, and load it when Redis lacks
# it (no nginx has connected yet)
redis_cli('FUNCTION', 'FLUSH');
my $out = `REGISTRY_REDIS_PORT=$redis->{port} scripts/registry project add fntest 2>&1`;
is $?, 0, 'an admin command with the library gone: done' or diag $out;
like library(), qr/admin_project_add/, '... after loading the library';
like scalar redis_cli('FCALL', 'admin_projects', 0), qr/fntest/,
    '... and its change is there';

done_testing;
