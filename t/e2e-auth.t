# Real clients against a registry with authorization on (the Redis-backed
# authorizer, as conf/nginx.conf sets it up): podman login with a token as
# the password, push, pull; skopeo copy with --src-creds/--dest-creds
# (registry to registry, which tries a cross-repository mount); a push into
# a project the user has no role in fails; a public project is pulled
# without logging in; a bad token cannot log in.  Then no log holds a token.
#
# Needs podman and skopeo (skipped, saying so, without them), Redis and
# the S3 store of scripts/test.  podman runs with a private storage (vfs)
# and auth file under the servroot: the machine's images and logins are
# not touched.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use Registry::Harness qw(start_nginx free_ports start_redis);
use Registry::Auth qw($AuthHttpConfig $AuthConfig setup_people leaked_tokens
    remember_tokens);
use Registry::Podman qw(need_tools podman_setup run ok_run tar_image);

need_tools(qw(podman skopeo));

my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 30, 1);

# a Redis of its own: the users, projects and cluster roles
# of Registry::Auth are made from scratch by each auth test file, which
# would undo one another's run side by side (prove -j)
my $redis = start_redis(port => free_ports(($ENV{TEST_NGINX_REDIS_PORT} || 16379) + 80, 1));
$ENV{TEST_NGINX_REDIS_PORT} = $redis->{port};
my $root = getcwd() . '/t/servroot-e2e-auth';
my $reg = "127.0.0.1:$port";

my $T = setup_people();
my $BAD = 'sha256~thisTokenWasNeverIssued0000000000000000000';
remember_tokens($BAD);

my $ngx = start_nginx(port => $port, servroot => $root, root_location => 0,
    http_config => $AuthHttpConfig
        . "    registry_auth_cache zone=registry_auth:4m valid=10s;\n",
    config => $AuthConfig);

# podman and skopeo, isolated under the servroot
my $pod = "$root/podman";
my ($podman, $skopeo) = podman_setup($pod);
my @podman = @$podman;
my @skopeo = @$skopeo;
tar_image($pod, "hello from the authorization test $$\n");
ok_run('podman import', @podman, 'import', "$pod/image.tar", 'localhost/e2e-auth:1');

my ($rc, $out) = run(@podman, 'login', '--tls-verify=false', '-u', 'anything', '-p', $BAD, $reg);
isnt $rc, 0, 'podman login with a bad token fails';
like $out, qr/unauthorized|invalid username\/password|401/i, '... as unauthorized';

ok_run('podman login -u anything -p TOKEN', @podman, 'login', '--tls-verify=false',
    '-u', 'anything', '-p', $T->{authalice}, $reg);
ok_run('podman push into a project with registry-editor', @podman, 'push',
    '--tls-verify=false', 'localhost/e2e-auth:1', "$reg/aproj/e2e:1");

ok_run('podman rmi', @podman, 'rmi', 'localhost/e2e-auth:1');
ok_run('podman pull it back', @podman, 'pull', '--tls-verify=false', "$reg/aproj/e2e:1");
$out = ok_run('podman image inspect', @podman, 'image', 'inspect', "$reg/aproj/e2e:1");
like $out, qr/"Id":/, '... the image is there';

($rc, $out) = run(@podman, 'push', '--tls-verify=false', "$reg/aproj/e2e:1", "$reg/aother/e2e:1");
isnt $rc, 0, 'podman push into a foreign project fails';
like $out, qr/denied|403|forbidden|unauthorized/i, '... with an authorization error'
    or diag $out;

ok_run('skopeo copy --src-creds/--dest-creds between projects (mount tried)', @skopeo, 'copy',
    '--src-tls-verify=false', '--dest-tls-verify=false',
    '--src-creds', "x:$T->{authalice}", '--dest-creds', "anything:$T->{authreg}",
    "docker://$reg/aproj/e2e:1", "docker://$reg/aother/e2e:2");
ok_run('skopeo inspect the copy', @skopeo, 'inspect', '--tls-verify=false',
    '--creds', "anything:$T->{authreg}", "docker://$reg/aother/e2e:2");

($rc, $out) = run(@skopeo, 'copy', '--src-tls-verify=false', '--dest-tls-verify=false',
    '--src-creds', "x:$T->{authalice}", '--dest-creds', "anything:$T->{authbob}",
    "docker://$reg/aproj/e2e:1", "docker://$reg/aproj/e2e:viewer");
isnt $rc, 0, 'skopeo copy as a registry-viewer fails';

# a public project: pushed by its editor... nobody has a role there but
# cluster-admin
ok_run('skopeo copy into a public project (cluster-admin)', @skopeo, 'copy',
    '--src-tls-verify=false', '--dest-tls-verify=false',
    '--src-creds', "x:$T->{authalice}", '--dest-creds', "x:$T->{authroot}",
    "docker://$reg/aproj/e2e:1", "docker://$reg/apub/e2e:1");
ok_run('podman logout', @podman, 'logout', '--all');
ok_run('podman pull from a public project without login', @podman, 'pull',
    '--tls-verify=false', "$reg/apub/e2e:1");
($rc, $out) = run(@podman, 'pull', '--tls-verify=false', "$reg/aproj/e2e:1");
isnt $rc, 0, 'podman pull from a private project without login fails';

$ngx->stop;

my @logs = glob("$root/logs/*.log");
my @leaks = leaked_tokens([values %$T, $BAD], @logs);
is scalar @leaks, 0, 'no token in the logs (' . scalar(@logs) . ' files)'
    or diag join "\n", map { "$_->[1] in $_->[0]" } @leaks;

done_testing;
