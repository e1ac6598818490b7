# Events: distribution's envelope for each blob commit, manifest push,
# mount, delete (and pull, behind registry_events_pull), in the Redis
# stream "events" and POSTed to webhook locations; a webhook that is down
# or hangs neither slows nor fails the push; retries are bounded.
#
# Instance E: the Redis-backed authorizer (users ev*, for the actor),
# webhooks to a receiver (ok), to a closed port (down) and to a server
# that never answers (hang).  Instance F: authorization off, pulls on, a
# webhook failing its first delivery.  Instance G: a short stream.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use JSON::PP;
use Time::HiRes qw(time sleep);
use Registry::Harness qw(start_nginx read_file free_ports start_redis);
use Registry::Auth qw(admin remember_tokens);
use Registry::Blobs qw(redis_cli);
use Registry::Images qw(image push_image push_blob hook_server hook_bodies d);

# $port .. $port + 13: three registries and four webhook receivers
my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 60, 14);

# a Redis of its own: it checks the length of the whole
# events stream, which another file run beside it (prove -j) adds to
my $redis = start_redis(port => free_ports(($ENV{TEST_NGINX_REDIS_PORT} || 16379) + 40, 1));
$ENV{TEST_NGINX_REDIS_PORT} = $redis->{port};
my ($HOOK_OK, $HOOK_DOWN, $HOOK_HANG, $HOOK_FLAKY) = map { $port + $_ } 10 .. 13;
my $root = getcwd() . '/t/servroot-events';
mkdir $root;
my $ok_file = "$root/hook-ok.jsonl";
my $flaky_file = "$root/hook-flaky.jsonl";
unlink $ok_file, $flaky_file;

my %T;
admin({ quiet => 1 }, 'user', 'delete', $_) for qw(evalice evbob);
admin({ quiet => 1 }, 'project', 'delete', 'evproj');
$T{$_} = admin('user', 'add', $_) for qw(evalice evbob);
remember_tokens(values %T);
admin('project', 'add', 'evproj');
admin('policy', 'add-role-to-user', 'registry-admin', 'evalice', '-n', 'evproj');
admin('policy', 'add-role-to-user', 'registry-viewer', 'evbob', '-n', 'evproj');
sub as { ['Authorization', "Bearer $T{$_[0]}"] }

my @pids = (hook_server($HOOK_OK, $ok_file), hook_server($HOOK_HANG, '/dev/null', hang => 1),
    hook_server($HOOK_FLAKY, $flaky_file, fail_first => 1));
END { kill 'TERM', @pids if @pids }

my $http = $Registry::Blobs::HttpConfig;
my $common = $Registry::Blobs::Config . <<'EOF';
    location = /_registry_auth {
        internal;
        registry_authorizer;
    }
EOF

my $e = start_nginx(port => $port, servroot => "$root/e", root_location => 0,
    http_config => $http . <<"EOF", config => $common . <<"EOF");
    registry_auth /_registry_auth;
    registry_auth_cache zone=registry_auth:1m valid=10s;
    registry_event_webhook /_hook/ok;
    registry_event_webhook /_hook/down attempts=3;
    registry_event_webhook /_hook/hang attempts=1;
EOF
    location = /_hook/ok {
        internal;
        proxy_pass http://127.0.0.1:$HOOK_OK/events;
    }
    location = /_hook/down {
        internal;
        proxy_pass http://127.0.0.1:$HOOK_DOWN/events;
    }
    location = /_hook/hang {
        internal;
        proxy_pass http://127.0.0.1:$HOOK_HANG/events;
        proxy_read_timeout 5s;
    }
EOF
my $f = start_nginx(port => $port + 1, servroot => "$root/f", root_location => 0,
    http_config => $http . <<"EOF", config => $common . <<"EOF");
    registry_events_pull on;
    registry_event_webhook /_hook/flaky attempts=2;
EOF
    location = /_hook/flaky {
        internal;
        proxy_pass http://127.0.0.1:$HOOK_FLAKY/events;
    }
EOF

# every entry of the stream: {id, action, repository, digest, tag, envelope}
sub entries {
    my $out = redis_cli('--raw', 'EVAL', q{
        local out = {}
        for _, e in ipairs(redis.call('XRANGE', 'events', '-', '+')) do
            local t = {id = e[1]}
            for i = 1, #e[2], 2 do t[e[2][i]] = e[2][i + 1] end
            out[#out + 1] = cjson.encode(t)
        end
        return out}, 0);
    return map { my $x = decode_json($_); $x->{event} = decode_json($x->{envelope})->{events}[0]; $x }
        grep { /\S/ } split /\n/, $out;
}
sub events_of { my ($repo) = @_; grep { $_->{repository} eq $repo } entries() }

# 1. a push: three blobs and a manifest by tag, as evalice

my $img = image(layers => 2);
my $R = 'evproj/app';
my $t0 = time;
my $r = push_image($e, $R, 'v1', $img, as('evalice'));
my $took = time - $t0;
is $r->{status}, 201, 'push with a webhook down and one that hangs: 201';
cmp_ok $took, '<', 2, "... in ${\ sprintf '%.2f', $took} s: not slowed";
is $r->{headers}{connection}, 'close', '... the client does not wait behind the webhooks';

my @ev = events_of($R);
is scalar @ev, 4, 'four events: three blobs, one manifest';
my %by = map { $_->{digest} => $_ } @ev;
for my $blob ($img->{config}, @{ $img->{layers} }) {
    my $x = $by{ d($blob) };
    ok $x, 'a blob event for ' . substr(d($blob), 0, 15) or next;
    my $ev = $x->{event};
    is $x->{action}, 'push', '... stream field action';
    is $ev->{action}, 'push', '... action';
    is $ev->{target}{digest}, d($blob), '... digest';
    is $ev->{target}{repository}, $R, '... repository';
    is $ev->{target}{mediaType}, 'application/octet-stream', '... mediaType';
    is $ev->{target}{size}, length $blob, '... size';
    is $ev->{target}{length}, length $blob, '... length';
    is $ev->{target}{url}, "http://localhost:$port/v2/$R/blobs/" . d($blob),
        '... url (server_name and port: no registry_public_host here)';
    is $ev->{actor}{name}, 'evalice', '... actor';
    is $ev->{request}{method}, 'POST', '... request.method';
}
my $m = $by{ $img->{digest} };
ok $m, 'the manifest event';
my $mev = $m->{event};
is $m->{tag}, 'v1', 'stream field tag';
is $mev->{action}, 'push', 'action push';
is $mev->{target}{digest}, $img->{digest}, 'digest';
is $mev->{target}{repository}, $R, 'repository';
is $mev->{target}{tag}, 'v1', 'tag';
is $mev->{target}{mediaType}, $img->{type}, 'mediaType';
is $mev->{target}{size}, length $img->{manifest}, 'size';
is $mev->{target}{length}, length $img->{manifest}, 'length';
is $mev->{target}{url}, "http://localhost:$port/v2/$R/manifests/$img->{digest}", 'url';
is $mev->{actor}{name}, 'evalice', 'actor: the user the authorizer named';
is $mev->{request}{method}, 'PUT', 'request.method';
is $mev->{request}{host}, 'localhost', 'request.host';
is $mev->{request}{addr}, '127.0.0.1', 'request.addr';
like $mev->{request}{id}, qr/^[0-9a-f]{32}$/, 'request.id';
like $mev->{id}, qr/^[0-9a-f-]{36}$/, 'id';
like $mev->{timestamp}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'timestamp (RFC 3339)';
like $mev->{source}{addr}, qr/:$port$/, 'source.addr';
like $mev->{source}{instanceID}, qr/^[0-9a-f-]{36}$/, 'source.instanceID';
my %ids = map { $_->{event}{id} => 1 } @ev;
is scalar keys %ids, 4, 'each event its own id';

# 2. the webhook got the same envelopes

my @got;
for (1 .. 50) {
    @got = grep { decode_json($_->{body})->{events}[0]{target}{repository} eq $R } hook_bodies($ok_file);
    last if @got >= 4;
    sleep 0.1;
}
is scalar @got, 4, 'the webhook received four POSTs';
is $got[0]{content_type}, 'application/vnd.docker.distribution.events.v2+json', '... Content-Type';
my %env = map { $_->{event}{id} => decode_json($_->{envelope}) } @ev;
my $same = grep { my $b = decode_json($_->{body}); $env{ $b->{events}[0]{id} }
    && JSON::PP->new->canonical->encode($env{ $b->{events}[0]{id} })
       eq JSON::PP->new->canonical->encode($b) } @got;
is $same, 4, '... each the envelope in the stream';

# the webhook that is down: retried, then dropped, all after the answer
my $log = '';
for (1 .. 60) {
    $log = $e->error_log;
    last if $log =~ /webhook "\/_hook\/down".*dropped after 3 attempts/;
    sleep 0.1;
}
like $log, qr/webhook "\/_hook\/down" answered 502, attempt 1 of 3/, 'the down webhook: retried';
like $log, qr/webhook "\/_hook\/down" answered 502, event dropped after 3 attempts/,
    '... then dropped after 3 attempts';

# 3. mount, deletes

my $blob = $img->{layers}[0];
$r = $e->request('POST', "/v2/evproj/copy/blobs/uploads/?mount=" . d($blob) . "&from=$R",
    headers => [as('evalice')]);
is $r->{status}, 201, 'mount';
my ($mount) = events_of('evproj/copy');
is $mount->{action}, 'mount', 'a mount event';
is $mount->{event}{target}{fromRepository}, $R, '... fromRepository';
is $mount->{event}{target}{size}, length $blob, '... size (looked up)';
is $mount->{event}{target}{digest}, d($blob), '... digest';

$r = $e->request('DELETE', "/v2/evproj/copy/blobs/" . d($blob), headers => [as('evalice')]);
is $r->{status}, 202, 'delete the blob';
my ($del) = grep { $_->{action} eq 'delete' } events_of('evproj/copy');
ok $del, 'a delete event';
is_deeply [sort keys %{ $del->{event}{target} }], [qw(digest repository)],
    '... carrying only digest and repository';
is $del->{event}{target}{digest}, d($blob), '... digest';
is $del->{event}{actor}{name}, 'evalice', '... actor';

$r = $e->request('DELETE', "/v2/$R/manifests/v1", headers => [as('evalice')]);
is $r->{status}, 202, 'untag';
($del) = grep { $_->{action} eq 'delete' } events_of($R);
is $del->{event}{target}{tag}, 'v1', 'delete event of a tag: the tag';
is $del->{event}{target}{digest}, $img->{digest}, '... and the digest it named';
$r = $e->request('DELETE', "/v2/$R/manifests/$img->{digest}", headers => [as('evalice')]);
is $r->{status}, 202, 'delete the manifest';
my @dels = grep { $_->{action} eq 'delete' } events_of($R);
is scalar @dels, 2, 'a second delete event';
is_deeply [sort keys %{ $dels[1]{event}{target} }], [qw(digest repository)],
    '... digest and repository only';

# 4. pulls: only behind registry_events_pull

push_image($e, $R, 'v2', $img, as('evalice'));
my $n = () = events_of($R);
$r = $e->request('GET', "/v2/$R/manifests/v2", headers => [as('evbob')]);
is $r->{status}, 200, 'GET the manifest on E';
is scalar(() = events_of($R)), $n, '... no pull event (off by default)';

my $img2 = image(layers => 1);
$r = push_image($f, 'evproj/pulled', 'latest', $img2);
is $r->{status}, 201, 'push on F (auth off)';
my @fev = events_of('evproj/pulled');
ok !exists $fev[-1]{event}{actor}{name}, 'anonymous: no actor name';
$r = $f->request('HEAD', '/v2/evproj/pulled/manifests/latest');
is scalar(() = events_of('evproj/pulled')), 3, 'HEAD: no pull event';
$r = $f->request('GET', '/v2/evproj/pulled/manifests/latest');
$r = $f->request('GET', '/v2/evproj/pulled/blobs/' . d($img2->{layers}[0]));
is $r->{status}, 200, 'GET a blob on F';
my @pulls = grep { $_->{action} eq 'pull' } events_of('evproj/pulled');
is scalar @pulls, 2, 'with registry_events_pull on: two pull events';
is $pulls[0]{event}{target}{tag}, 'latest', '... the manifest, by tag';
is $pulls[0]{event}{target}{mediaType}, $img2->{type}, '... its media type';
is $pulls[1]{event}{target}{size}, length $img2->{layers}[0], '... the blob, its size';

# 5. a webhook failing once is retried: the same envelope twice
my (@flaky, @again, $first);
for (1 .. 60) {
    @flaky = hook_bodies($flaky_file);
    $first = @flaky ? decode_json($flaky[0]{body})->{events}[0]{id} : '';
    @again = grep { decode_json($_->{body})->{events}[0]{id} eq $first } @flaky;
    last if @again >= 2;
    sleep 0.1;
}
is $flaky[0]{status}, 500, 'flaky webhook: first delivery refused';
is scalar @again, 2, '... delivered again';
is $again[1]{status}, 200, '... and taken';
is $again[1]{body}, $again[0]{body}, '... the same envelope';

# 6. the stream is bounded
my $g = start_nginx(port => $port + 2, servroot => "$root/g", root_location => 0,
    http_config => $http . "    registry_events_maxlen 3;\n", config => $common);
push_image($g, 'evproj/small', 'latest', image(layers => 2));
is redis_cli('XLEN', 'events'), 3, 'registry_events_maxlen 3: XLEN is 3';
$g->stop;

$e->stop;
$f->stop;
for my $ngx ($e, $f) {
    my $l = read_file("$ngx->{servroot}/logs/error.log") // '';
    my @alerts = $l =~ /^(.*\[(?:alert|crit|emerg)\].*)$/mg;
    is scalar @alerts, 0, "no alert in $ngx->{name}'s log" or diag join "\n", @alerts[0 .. 4];
}

done_testing;
