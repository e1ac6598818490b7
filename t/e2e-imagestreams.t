# A real `podman push` makes the image stream, the Image object and the
# events (in the Redis stream and at a webhook), with authorization on.
#
# Needs podman (skipped, saying so, without it), Redis and the S3 store of
# scripts/test.  podman runs with a private storage (vfs) under the
# servroot; the image is made locally with `podman import` (no network).
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use File::Path qw(make_path remove_tree);
use JSON::PP;
use Registry::Harness qw(start_nginx free_ports);
use Registry::Auth qw($AuthHttpConfig $AuthConfig editor);
use Registry::Blobs qw(redis_cli);
use Registry::Images qw(api hook_server hook_bodies);
use Registry::Podman qw(need_tools podman_setup ok_run tar_image);

need_tools('podman');

my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 70, 2);
my $hook = $port + 1;
my $root = getcwd() . '/t/servroot-e2e-imagestreams';
my $reg = "127.0.0.1:$port";
remove_tree($root);
make_path($root);

my $token = editor('ispod', 'podproj');

my $hook_file = "$root/hook.jsonl";
my $pid = hook_server($hook, $hook_file);
END { kill 'TERM', $pid if $pid }

my $ngx = start_nginx(port => $port, servroot => "$root/nginx", root_location => 0,
    http_config => "    registry_public_host $reg;\n" . $AuthHttpConfig . <<'EOF',
    registry_auth_cache zone=registry_auth:1m valid=10s;
    registry_event_webhook /_hook;
EOF
    config => $AuthConfig . <<"EOF");
    location = /_hook {
        internal;
        proxy_pass http://127.0.0.1:$hook/events;
    }
EOF

my $pod = "$root/podman";
my ($podman) = podman_setup($pod);
my @podman = @$podman;
tar_image($pod, "hello from the image stream test $$\n");
ok_run('podman import (labels, entrypoint, cmd)', @podman, 'import',
    '--change', 'LABEL io.example.test=e2e', '--change', 'ENTRYPOINT ["/hello"]',
    '--change', 'CMD ["--loud"]', "$pod/image.tar", 'localhost/e2e-is:1');
ok_run('podman login', @podman, 'login', '--tls-verify=false', '-u', 'x', '-p', $token, $reg);
ok_run('podman push', @podman, 'push', '--tls-verify=false', 'localhost/e2e-is:1',
    "$reg/podproj/hello:1");
my $digest = redis_cli('HGET', 'repo:podproj/hello:tags', '1');
like $digest, qr/^sha256:[0-9a-f]{64}$/, 'the tag is stored';

my @auth = (['Authorization', "Bearer $token"]);
my $API = '/apis/image.openshift.io/v1';
my ($st, $is) = api($ngx, "$API/namespaces/podproj/imagestreams/hello", @auth);
is $st, 200, 'the image stream exists';
is $is->{status}{tags}[0]{tag}, '1', '... with tag 1';
is $is->{status}{tags}[0]{items}[0]{image}, $digest, '... naming the pushed digest';
is $is->{status}{tags}[0]{items}[0]{pushedBy}, 'ispod', '... pushed by ispod';
is $is->{status}{tags}[0]{items}[0]{dockerImageReference}, "$reg/podproj/hello\@$digest",
    '... its reference (registry_public_host, as scripts/registry up sets it)';

my $im;
($st, $im) = api($ngx, "$API/images/$digest", @auth);
is $st, 200, 'the Image exists';
my $m = $im->{dockerImageMetadata};
is $m->{Config}{Labels}{'io.example.test'}, 'e2e', '... label from the config blob';
is_deeply $m->{Config}{Entrypoint}, ['/hello'], '... entrypoint';
is_deeply $m->{Config}{Cmd}, ['--loud'], '... cmd';
is $m->{Os}, 'linux', '... os';
ok $m->{Architecture}, "... architecture ($m->{Architecture})";
ok $m->{Created}, '... created';
is scalar @{ $im->{dockerImageLayers} }, 1, '... one layer';
ok $m->{Size} > $im->{dockerImageLayers}[0]{size}, '... total size';

my $out = redis_cli('--raw', 'EVAL', q{
    local out = {}
    for _, e in ipairs(redis.call('XRANGE', 'events', '-', '+')) do
        for i = 1, #e[2], 2 do
            if e[2][i] == 'envelope' then out[#out + 1] = e[2][i + 1] end
        end
    end
    return out}, 0);
my @ev = grep { $_->{target}{repository} eq 'podproj/hello' }
    map { decode_json($_)->{events}[0] } grep { /\S/ } split /\n/, $out;
my @push = grep { $_->{action} eq 'push' } @ev;
cmp_ok scalar @push, '>=', 3, 'push events: config, layer, manifest';
my ($me) = grep { $_->{target}{digest} eq $digest } @push;
ok $me, 'the manifest event';
is $me->{target}{tag}, '1', '... tag';
is $me->{actor}{name}, 'ispod', '... actor';
like $me->{request}{useragent}, qr/containers|podman|Go/i, '... podman as the user agent';
ok((grep { $_->{target}{mediaType} eq 'application/octet-stream' } @push) >= 2,
    '... blob events');

my @hooked;
for (1 .. 50) {
    @hooked = grep { (decode_json($_->{body})->{events}[0]{target}{repository} // '') eq 'podproj/hello' }
        hook_bodies($hook_file);
    last if @hooked >= @ev;
    sleep 0.1;
}
is scalar @hooked, scalar @ev, 'the webhook got every event';

ok_run('podman logout', @podman, 'logout', '--all');
$ngx->stop;

done_testing;
