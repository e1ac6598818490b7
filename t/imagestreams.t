# Image streams, images and their API (OpenShift's shapes), and watches.
#
# Two nginx instances share the test Redis and bucket: A with the
# Redis-backed authorizer (users is* below, made with the admin CLI), B
# with authorization off, as a second host.  Images are made in memory
# and pushed over HTTP (monolithic blob uploads, then the manifest).
#
# Project isproj: isalice registry-admin, iscarol registry-editor, isbob
# registry-viewer, iseve nothing.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use Time::HiRes qw(time sleep);
use Registry::Harness qw(start_nginx free_ports start_redis);
use Registry::Auth qw(admin remember_tokens);
use Registry::Blobs ();
use Registry::Images qw(image index_of push_image push_blob api watch_open
    watch_next watch_status d);

my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 50, 2);

# a Redis of its own: it trims imagestreams:log and kills every
# pub/sub client, which would break another file's watches (prove -j)
my $redis = start_redis(port => free_ports(($ENV{TEST_NGINX_REDIS_PORT} || 16379) + 50, 1));
$ENV{TEST_NGINX_REDIS_PORT} = $redis->{port};
my $HOST = 'registry.test:5000';

# people
my %T;
for my $u (qw(isalice iscarol isbob iseve)) {
    admin({ quiet => 1 }, 'user', 'delete', $u);
}
admin({ quiet => 1 }, 'project', 'delete', 'isproj');
$T{$_} = admin('user', 'add', $_) for qw(isalice iscarol isbob iseve);
remember_tokens(values %T);
admin('project', 'add', 'isproj');
admin('policy', 'add-role-to-user', 'registry-admin', 'isalice', '-n', 'isproj');
admin('policy', 'add-role-to-user', 'registry-editor', 'iscarol', '-n', 'isproj');
admin('policy', 'add-role-to-user', 'registry-viewer', 'isbob', '-n', 'isproj');

sub as { ['Authorization', "Bearer $T{$_[0]}"] }

my $http = $Registry::Blobs::HttpConfig . <<"EOF";
    registry_public_host $HOST;
    registry_history_depth 3;
EOF
my $auth = <<'EOF';
    registry_auth /_registry_auth;
    registry_auth_cache zone=registry_auth:1m valid=10s;
EOF
my $config = $Registry::Blobs::Config . <<'EOF';
    location = /_registry_auth {
        internal;
        registry_authorizer;
    }
EOF

my $a = start_nginx(port => $port, servroot => getcwd() . '/t/servroot-imagestreams-a',
    root_location => 0, workers => 2, http_config => $http . $auth, config => $config);
my $b = start_nginx(port => $port + 1, servroot => getcwd() . '/t/servroot-imagestreams-b',
    root_location => 0, workers => 2, http_config => $http, config => $config);

my $API = '/apis/image.openshift.io/v1';
my $R = 'isproj/app';

sub stream { my ($ngx, $name, @h) = @_; api($ngx, "$API/namespaces/isproj/imagestreams/$name", @h) }
sub tags_list {
    my ($ngx, $repo, @h) = @_;
    my $r = $ngx->request('GET', "/v2/$repo/tags/list", headers => [@h]);
    return $r->{status} == 200 ? decode_json($r->{body})->{tags} : undef;
}
sub stream_tags { [map { $_->{tag} } @{ $_[0]{status}{tags} || [] }] }

# 1. two pushes of different images to the same tag

my $img1 = image(labels => { 'io.example.name' => 'one' }, entrypoint => ['/bin/one'],
    cmd => ['--one'], arch => 'arm64', os => 'linux', created => '2023-01-02T03:04:05Z');
my $img2 = image(layers => 3);

my $t0 = time;
my $r = push_image($a, $R, 'latest', $img1, as('isalice'));
is $r->{status}, 201, 'push image 1 as isalice' or diag $r->{body};
$r = push_image($a, $R, 'latest', $img2, as('iscarol'));
is $r->{status}, 201, 'push image 2 to the same tag as iscarol' or diag $r->{body};

my ($st, $is) = stream($a, 'app', as('isbob'));
is $st, 200, 'GET imagestreams/app as a viewer';
is $is->{kind}, 'ImageStream', 'kind';
is $is->{apiVersion}, 'image.openshift.io/v1', 'apiVersion';
is $is->{metadata}{name}, 'app', 'metadata.name';
is $is->{metadata}{namespace}, 'isproj', 'metadata.namespace';
like $is->{metadata}{creationTimestamp}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    'metadata.creationTimestamp (RFC 3339)';
like $is->{metadata}{resourceVersion}, qr/^\d+$/, 'metadata.resourceVersion';
like $is->{metadata}{uid}, qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    'metadata.uid';
is $is->{metadata}{generation}, 2, 'metadata.generation counts the new entries';
is $is->{status}{dockerImageRepository}, "$HOST/isproj/app", 'status.dockerImageRepository';
is_deeply stream_tags($is), ['latest'], 'one tag';
my $items = $is->{status}{tags}[0]{items};
is scalar @$items, 2, 'two history entries';
is $items->[0]{image}, $img2->{digest}, 'newest first: image 2';
is $items->[1]{image}, $img1->{digest}, '... then image 1';
is $items->[0]{dockerImageReference}, "$HOST/isproj/app\@$img2->{digest}", 'reference of entry 1';
is $items->[1]{dockerImageReference}, "$HOST/isproj/app\@$img1->{digest}", 'reference of entry 2';
is $items->[0]{pushedBy}, 'iscarol', 'pusher of entry 1';
is $items->[1]{pushedBy}, 'isalice', 'pusher of entry 2';
is $items->[0]{generation}, 2, 'generation of entry 1';
is $items->[1]{generation}, 1, 'generation of entry 2';
like $items->[0]{created}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'created';

# 2. an identical re-push adds nothing

my $rv = $is->{metadata}{resourceVersion};
$r = push_image($a, $R, 'latest', $img2, as('isalice'));
is $r->{status}, 201, 'identical re-push';
(undef, $is) = stream($a, 'app', as('isbob'));
is scalar @{ $is->{status}{tags}[0]{items} }, 2, '... adds no entry';
is $is->{metadata}{resourceVersion}, $rv, '... and leaves the stream unchanged';

# 3. depth, more tags, and the tags list

my @deep = map { image(layers => 1) } 1 .. 4;
for my $i (0 .. 3) {
    $r = push_image($a, $R, 'deep', $deep[$i], as('iscarol'));
    is $r->{status}, 201, "push $i to tag deep";
}
$r = push_image($a, $R, 'v1', $img1, as('iscarol'));
is $r->{status}, 201, 'push image 1 as v1';
$r = push_image($a, $R, $img2->{digest}, $img2, as('iscarol'));
is $r->{status}, 201, 'push by digest';
(undef, $is) = stream($a, 'app', as('isbob'));
my ($deep) = grep { $_->{tag} eq 'deep' } @{ $is->{status}{tags} };
is scalar @{ $deep->{items} }, 3, 'history bounded by registry_history_depth';
is_deeply [map { $_->{image} } @{ $deep->{items} }],
    [map { $_->{digest} } @deep[3, 2, 1]], '... the newest three';
is_deeply stream_tags($is), tags_list($a, $R, as('isbob')), 'stream tags == tags list';
is_deeply stream_tags($is), [qw(deep latest v1)], '... deep, latest, v1';

# 4. tag deletion

$r = $a->request('DELETE', "/v2/$R/manifests/v1", headers => [as('isalice')]);
is $r->{status}, 202, 'DELETE the tag v1';
(undef, $is) = stream($a, 'app', as('isbob'));
is_deeply stream_tags($is), [qw(deep latest)], 'v1 left the stream';
is_deeply stream_tags($is), tags_list($a, $R, as('isbob')), '... and the tags list';

# deleting a manifest by digest: its tags go, other tags forget it
$r = $a->request('DELETE', "/v2/$R/manifests/$deep[3]{digest}", headers => [as('isalice')]);
is $r->{status}, 202, 'DELETE the manifest heading deep';
(undef, $is) = stream($a, 'app', as('isbob'));
is_deeply stream_tags($is), ['latest'], 'deep left the stream';
is_deeply stream_tags($is), tags_list($a, $R, as('isbob')), '... and the tags list';

# 5. the Image object, field by field

my ($st2, $im) = api($a, "$API/images/$img1->{digest}", as('isbob'));
is $st2, 200, 'GET images/D';
is $im->{kind}, 'Image', 'kind';
is $im->{apiVersion}, 'image.openshift.io/v1', 'apiVersion';
is $im->{metadata}{name}, $img1->{digest}, 'metadata.name is the digest';
like $im->{metadata}{resourceVersion}, qr/^\d+$/, 'metadata.resourceVersion';
like $im->{metadata}{creationTimestamp}, qr/^\d{4}-\d\d-\d\dT/, 'metadata.creationTimestamp';
is $im->{dockerImageReference}, "$HOST/isproj/app\@$img1->{digest}", 'dockerImageReference';
is $im->{dockerImageManifestMediaType}, $img1->{type}, 'dockerImageManifestMediaType';
is $im->{dockerImageManifest}, $img1->{manifest}, 'dockerImageManifest: the bytes';
is_deeply $im->{dockerImageLayers}, [map { { name => d($_), size => length $_,
    mediaType => $img1->{layer_type} } } @{ $img1->{layers} }], 'dockerImageLayers in order';
my $m = $im->{dockerImageMetadata};
is $m->{kind}, 'DockerImage', 'dockerImageMetadata.kind';
is $m->{Id}, $img1->{config_digest}, 'config digest (Id)';
is $m->{Architecture}, 'arm64', 'Architecture';
is $m->{Os}, 'linux', 'Os';
is $m->{Created}, '2023-01-02T03:04:05Z', 'Created';
is_deeply $m->{Config}{Labels}, { 'io.example.name' => 'one' }, 'Config.Labels';
is_deeply $m->{Config}{Entrypoint}, ['/bin/one'], 'Config.Entrypoint';
is_deeply $m->{Config}{Cmd}, ['--one'], 'Config.Cmd';
my $size = length $img1->{config};
$size += length $_ for @{ $img1->{layers} };
is $m->{Size}, $size, 'Size: config and layers';

# a config larger than one S3 read (8 KiB)
my $big = image(config_pad => 20000, arch => 's390x');
$r = push_image($a, 'isproj/big', 'latest', $big, as('iscarol'));
is $r->{status}, 201, 'push an image with a 20 KiB config';
(undef, $im) = api($a, "$API/images/$big->{digest}", as('isbob'));
is $im->{dockerImageMetadata}{Architecture}, 's390x', '... its config read in ranges';
is length $im->{dockerImageMetadata}{Config}{Labels}{'io.example.pad'}, 20000, '... whole';

# an index
my $idx = index_of(image(layers => 1), image(layers => 1, type => 'oci'));
$r = push_image($a, $R, 'multi', $idx, as('iscarol'));
is $r->{status}, 201, 'push an index by tag';
(undef, $im) = api($a, "$API/images/$idx->{digest}", as('isbob'));
is $im->{dockerImageManifestMediaType}, $idx->{type}, 'index: media type';
is_deeply [map { $_->{digest} } @{ $im->{dockerImageManifests} }],
    [map { $_->{digest} } @{ $idx->{children} }], 'index: dockerImageManifests';
is $im->{dockerImageManifests}[1]{architecture}, 'arm64', 'index: platform';

# 6. ImageStreamTag

my ($st3, $ist) = api($a, "$API/namespaces/isproj/imagestreamtags/app:latest", as('isbob'));
is $st3, 200, 'GET imagestreamtags/app:latest';
is $ist->{kind}, 'ImageStreamTag', 'kind';
is $ist->{metadata}{name}, 'app:latest', 'metadata.name';
is $ist->{metadata}{namespace}, 'isproj', 'metadata.namespace';
is $ist->{image}{metadata}{name}, $img2->{digest}, 'image: the head';
is $ist->{image}{dockerImageMetadata}{Id}, $img2->{config_digest}, 'image: its metadata';
is $ist->{generation}, 2, 'generation of the head';

# 7. the list

my ($st4, $list) = api($a, "$API/namespaces/isproj/imagestreams", as('isbob'));
is $st4, 200, 'GET imagestreams';
is $list->{kind}, 'ImageStreamList', 'kind';
like $list->{metadata}{resourceVersion}, qr/^\d+$/, 'metadata.resourceVersion';
is_deeply [map { $_->{metadata}{name} } @{ $list->{items} }], [qw(app big)], 'items by name';

# 8. 404s and refusals

for my $case (
    ["$API/namespaces/isproj/imagestreams/nothere", 'imagestreams', 'nothere'],
    ["$API/namespaces/isproj/imagestreamtags/app:nothere", 'imagestreamtags', 'app:nothere'],
    ["$API/images/sha256:" . ('0' x 64), 'images', 'sha256:' . ('0' x 64)],
) {
    my ($s, $body) = api($a, $case->[0], as('isbob'));
    is $s, 404, "404 for $case->[2]";
    is $body->{kind}, 'Status', '... kind Status';
    is $body->{apiVersion}, 'v1', '... apiVersion v1';
    is $body->{status}, 'Failure', '... status Failure';
    is $body->{reason}, 'NotFound', '... reason NotFound';
    is $body->{code}, 404, '... code 404';
    is $body->{details}{name}, $case->[2], '... details.name';
    is $body->{details}{kind}, $case->[1], '... details.kind';
    is $body->{details}{group}, 'image.openshift.io', '... details.group';
    is $body->{message}, qq{$case->[1].image.openshift.io "$case->[2]" not found}, '... message';
}
my ($s5, $b5) = api($a, "$API/namespaces/isproj/buildconfigs", as('isbob'));
is $s5, 404, 'unknown resource: 404';
is $b5->{kind}, 'Status', '... a Status';

($s5, $b5) = api($a, "$API/namespaces/isproj/imagestreams/app", as('iseve'));
is $s5, 403, 'no pull rights: 403';
is $b5->{kind}, 'Status', '... a Status';
is $b5->{reason}, 'Forbidden', '... reason Forbidden';
is $b5->{code}, 403, '... code 403';
($s5) = api($a, "$API/namespaces/isproj/imagestreams", as('iseve'));
is $s5, 403, 'no pull rights: 403 on the list';
($s5) = api($a, "$API/namespaces/isproj/imagestreamtags/app:latest", as('iseve'));
is $s5, 403, 'no pull rights: 403 on a tag';
($s5, $b5) = api($a, "$API/images/$img1->{digest}", as('iseve'));
is $s5, 404, 'an Image of no repository the user may pull: 404';
($s5, $b5) = api($a, "$API/namespaces/isproj/imagestreams/app");
is $s5, 401, 'anonymous: 401';
is $b5->{reason}, 'Unauthorized', '... a Status';
like $b5->{message}, qr/authentication required/, '... saying why';

# projects whose names are those of the registry's own keys
for my $p (qw(rv log)) {
    $r = push_image($b, "$p/app", 'latest', image(layers => 1));
    is $r->{status}, 201, "push into project $p";
    my ($s, $l) = api($b, "$API/namespaces/$p/imagestreams");
    is_deeply [map { $_->{metadata}{name} } @{ $l->{items} || [] }], ['app'],
        "... its stream is listed";
}

# 9. watch: opened on A, the push lands on B

my $w = watch_open($port, "$API/namespaces/isproj/imagestreams?watch=true&resourceVersion=$list->{metadata}{resourceVersion}",
    as('isbob'));
is watch_status($w), 200, 'watch from the list: 200';
my $img3 = image();
$r = push_image($b, $R, 'latest', $img3);
is $r->{status}, 201, 'push on instance B';
my $ev = watch_next($w, 5);
is $ev->{type}, 'MODIFIED', 'the watch on A sees MODIFIED';
is $ev->{object}{metadata}{name}, 'app', '... of app';
is $ev->{object}{status}{tags}[0]{items}[0]{image}, $img3->{digest}, '... with the new head';
ok !exists $ev->{object}{status}{tags}[0]{items}[0]{pushedBy}, '... anonymous: no pusher';
my $rv3 = $ev->{object}{metadata}{resourceVersion};

my $other = image(layers => 1);
$r = push_image($b, 'isproj/other', 'x', $other);
$ev = watch_next($w, 5);
is $ev->{type}, 'ADDED', 'a new stream: ADDED';
is $ev->{object}{metadata}{name}, 'other', '... other';
$r = push_image($b, 'elsewhere/app', 'x', image(layers => 1));
$r = $b->request('DELETE', "/v2/isproj/other/manifests/$other->{digest}");
is $r->{status}, 202, 'delete the only manifest of isproj/other';
$ev = watch_next($w, 5);
is $ev->{type}, 'DELETED', 'the stream went: DELETED';
is $ev->{object}{metadata}{name}, 'other', '... other (nothing of another project)';
my ($s6) = stream($a, 'other', as('isbob'));
is $s6, 404, 'and it is gone';

# replay from a resourceVersion: what happened after it, at once
my $w2 = watch_open($port, "$API/namespaces/isproj/imagestreams?watch=1&resourceVersion=$rv3",
    as('isbob'));
my @types = map { my $e = watch_next($w2, 3); $e ? $e->{type} : 'none' } 1 .. 2;
is_deeply \@types, [qw(ADDED DELETED)], 'replayed from a resourceVersion';

# no resourceVersion: the current state first
my $w3 = watch_open($port, "$API/namespaces/isproj/imagestreams?watch=true&timeoutSeconds=2",
    as('isbob'));
my @added = map { my $e = watch_next($w3, 3); $e ? "$e->{type} $e->{object}{metadata}{name}" : 'none' } 1 .. 2;
is_deeply \@added, ['ADDED app', 'ADDED big'], 'without a resourceVersion: ADDED for each';
my $t1 = time;
my $none = watch_next($w3, 5);
ok !defined $none && $w3->{ended}, 'timeoutSeconds ends the watch';
cmp_ok time - $t1, '<', 4, '... in time';

my $w4 = watch_open($port, "$API/namespaces/isproj/imagestreams?watch=true", as('iseve'));
is watch_status($w4), 403, 'watch without pull rights: 403';

$ev = watch_next($w, 0.5);
ok !defined $ev, 'the first watch saw nothing more';
close $w->{sock};
close $w2->{sock};

# the log no longer holds what followed a version: ERROR 410, then the end
Registry::Blobs::redis_cli('XTRIM', 'imagestreams:log', 'MAXLEN', 1);
my $w5 = watch_open($port, "$API/namespaces/isproj/imagestreams?watch=true&resourceVersion=$rv3",
    as('isbob'));
$ev = watch_next($w5, 3);
is $ev->{type}, 'ERROR', 'a trimmed-away resourceVersion: ERROR';
is $ev->{object}{code}, 410, '... 410';
is $ev->{object}{reason}, 'Expired', '... Expired';
ok !defined watch_next($w5, 3) && $w5->{ended}, '... and the watch ends';

# the subscription lost: watches end (clients watch again), new ones work
my (undef, $l6) = api($a, "$API/namespaces/isproj/imagestreams", as('isbob'));
my $rv6 = $l6->{metadata}{resourceVersion};
my $w6 = watch_open($port, "$API/namespaces/isproj/imagestreams?watch=true&resourceVersion=$rv6",
    as('isbob'));
is watch_status($w6), 200, 'another watch';
my $w7 = watch_open($port, "$API/namespaces/isproj/imagestreams?watch=true&resourceVersion=$rv6",
    as('isbob'));
is watch_status($w7), 200, 'and another';
Registry::Blobs::redis_cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
ok !defined watch_next($w6, 3) && $w6->{ended}, 'the subscriber killed: the watch ends';
ok !defined watch_next($w7, 3) && $w7->{ended}, '... every watch';
my ($s8, $l8) = api($a, "$API/namespaces/isproj/imagestreams", as('isbob'));
my $w8 = watch_open($port, "$API/namespaces/isproj/imagestreams?watch=true&resourceVersion=$l8->{metadata}{resourceVersion}",
    as('isbob'));
is watch_status($w8), 200, 'a new watch';
$r = push_image($b, $R, 'again', image(layers => 1));
$ev = watch_next($w8, 5);
is $ev->{type}, 'MODIFIED', '... sees the next push';

# a reload: the old workers end their watches at once
my $t2 = time;
$a->reload;
ok !defined watch_next($w8, 5) && $w8->{ended}, 'reload: the watch ends';
cmp_ok time - $t2, '<', 3, '... promptly';

# the CLI
my $out = admin('get', 'imagestreams', '-n', 'isproj');
like $out, qr/^NAME\s+IMAGE REPOSITORY\s+TAGS\s+UPDATED$/m, 'CLI get imagestreams: header';
like $out, qr{^app\s+\Q$HOST\E/isproj/app\s+again,latest,multi\s+\d+ seconds ago$}m,
    '... app with its tags';
$out = admin('describe', 'imagestream', 'app', '-n', 'isproj');
like $out, qr/^Name:\s+app$/m, 'CLI describe imagestream: name';
like $out, qr/^Namespace:\s+isproj$/m, '... namespace';
like $out, qr/^Tags:\s+3$/m, '... tag count';
like $out, qr{^latest\n\n  \* \Q$HOST\E/isproj/app\@\Q$img3->{digest}\E\n\s+\d+ seconds ago\n    \Q$HOST\E/isproj/app\@\Q$img2->{digest}\E\n\s+\d+ seconds ago by iscarol\n    \Q$HOST\E/isproj/app\@\Q$img1->{digest}\E\n\s+\d+ seconds ago by isalice$}m,
    '... the history of latest, newest first, with pushers';
$out = admin('get', 'imagestreams');
like $out, qr{^isproj\s+app\s}m, 'CLI get imagestreams of every project: isproj';
like $out, qr{^rv\s+app\s}m, '... rv';
$out = admin('get', 'images');
like $out, qr{^\Q$img1->{digest}\E\s+\Q$HOST\E/isproj/app\@\Q$img1->{digest}\E$}m,
    'CLI get images';

$a->stop;
$b->stop;

for my $ngx ($a, $b) {
    my $log = Registry::Harness::read_file("$ngx->{servroot}/logs/error.log") // '';
    my @alerts = $log =~ /^(.*\[(?:alert|crit|emerg)\].*)$/mg;
    is scalar @alerts, 0, "no alert in $ngx->{name}'s log" or diag join "\n", @alerts[0 .. 4];
}

done_testing;
