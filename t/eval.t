# Lua scripts go to Redis by their SHA-1 (EVALSHA) and fall back to the
# script's text when Redis does not know them (NOSCRIPT): first use, a
# Redis restart, SCRIPT FLUSH.  Real nginx with the module, real Redis.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use Registry::Blobs qw($HttpConfig $Config redis_cli);
use Registry::Harness qw(start_nginx free_ports start_redis);

# a Redis of its own: its checks count commands Redis-wide (INFO
# commandstats), which another file run beside it (prove -j) would add to
my $redis = start_redis(port => free_ports(($ENV{TEST_NGINX_REDIS_PORT} || 16379) + 30, 1));
$ENV{TEST_NGINX_REDIS_PORT} = $redis->{port};

my $ngx = start_nginx(port => free_ports(($ENV{TEST_NGINX_SERVER_PORT} // 1984) + 50, 1),
    servroot => getcwd() . '/t/servroot-eval', root_location => 0,
    http_config => $HttpConfig, config => $Config);

sub calls {
    my ($cmd) = @_;
    my $stats = redis_cli('INFO', 'commandstats');
    return $stats =~ /^cmdstat_$cmd:calls=(\d+)/m ? $1 : 0;
}

redis_cli('SCRIPT', 'FLUSH');
my ($sha0, $eval0) = (calls('evalsha'), calls('eval'));

my $r = $ngx->request('GET', '/v2/evaltest/none/tags/list');
is $r->{status}, 404, 'an unknown script: answered (NAME_UNKNOWN)';
is calls('evalsha') - $sha0, 1, 'tried by its SHA-1 first';
is calls('eval') - $eval0, 1, 'then sent as text after NOSCRIPT';

$r = $ngx->request('GET', '/v2/evaltest/none/tags/list');
is $r->{status}, 404, 'a known script: answered';
is calls('evalsha') - $sha0, 2, 'by its SHA-1';
is calls('eval') - $eval0, 1, 'without its text';

redis_cli('SCRIPT', 'FLUSH');
$r = $ngx->request('GET', '/v2/evaltest/none/tags/list');
is $r->{status}, 404, 'after SCRIPT FLUSH: still answered';
is calls('eval') - $eval0, 2, 'the text is sent again';

unlike $ngx->error_log, qr/\[(?:error|alert|crit)\]/, 'no errors logged';
$ngx->stop;

done_testing;
