# Image streams of many tags: a watch-log entry and a watch event weigh
# one tag's history whatever the stream's tag count (sizes, not timings:
# the speed is scripts/bench's tags section), while the API still
# returns the whole stream; and a stream an older version wrote whole
# (one string of JSON) is read as it is and split at its first change.
#
# One nginx (authorization off) on a Redis of its own (the test reads
# the whole watch log).
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use JSON::PP;
use Registry::Harness qw(start_nginx free_ports start_redis);
use Registry::Auth qw(admin);
use Registry::Blobs ();
use Registry::Images qw(image push_image api watch_open watch_next watch_status);

my $TAGS = 2000;

my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 72, 1);
my $redis = start_redis(port => free_ports(($ENV{TEST_NGINX_REDIS_PORT} || 16379) + 72, 1));
$ENV{TEST_NGINX_REDIS_PORT} = $redis->{port};
my $HOST = 'registry.test:5000';

my $ngx = start_nginx(port => $port, servroot => getcwd() . '/t/servroot-imagestreams-scale',
    root_location => 0, workers => 2,
    http_config => $Registry::Blobs::HttpConfig . <<"EOF",
    registry_public_host $HOST;
    registry_history_depth 5;
    registry_events_maxlen 100000;
EOF
    config => $Registry::Blobs::Config);

my $API = '/apis/image.openshift.io/v1';
my $R = 'scale/big';
sub redis { Registry::Blobs::redis_cli(@_) }
# the largest event in the watch log, in bytes
sub log_max {
    return redis('EVAL', q{
        local max, start = 0, '-'
        while true do
            local b = redis.call('XRANGE', 'imagestreams:log', start, '+', 'COUNT', 100)
            for _, e in ipairs(b) do
                if #e[2][4] > max then max = #e[2][4] end
            end
            if #b < 100 then return max end
            start = '(' .. b[#b][1]
        end
    }, 0);
}
sub put {
    my ($repo, $tag, $img) = @_;
    return $ngx->request('PUT', "/v2/$repo/manifests/$tag", body => $img->{manifest},
        headers => [['Content-Type', $img->{type}]])->{status};
}

# 10 tags, then 2,000, of one image: each push adds an entry to its tag
my $img = image(layers => 1);
is push_image($ngx, $R, 't0', $img)->{status}, 201, 'push t0';
my $bad = 0;
for my $i (1 .. 9) { $bad++ if put($R, "t$i", $img) != 201 }
my $max10 = log_max();
for my $i (10 .. $TAGS - 1) { $bad++ if put($R, "t$i", $img) != 201 }
is $bad, 0, "$TAGS tags pushed";
my $max2000 = log_max();
is redis('XLEN', 'imagestreams:log'), $TAGS, 'one watch-log entry per push';
cmp_ok $max2000, '<=', $max10 + 16,
    "the largest watch-log entry at $TAGS tags ($max2000 B) is that at 10 ($max10 B)";
cmp_ok $max2000, '<', 2048, '... under 2 KiB';

# the whole stream, tags in order
my ($st, $is) = api($ngx, "$API/namespaces/scale/imagestreams/big");
is $st, 200, 'GET the stream';
is scalar @{ $is->{status}{tags} }, $TAGS, "... all $TAGS tags";
is_deeply [map { $_->{tag} } @{ $is->{status}{tags} }], [sort map { "t$_" } 0 .. $TAGS - 1],
    '... in the order of the tags list';
my (undef, $tl) = api($ngx, "/v2/$R/tags/list");
is_deeply [map { $_->{tag} } @{ $is->{status}{tags} }], $tl->{tags}, '... which is the tags list';
is $is->{metadata}{generation}, $TAGS, '... generation';
is $is->{status}{tags}[1]{items}[0]{image}, $img->{digest}, '... entries';
is $is->{status}{dockerImageRepository}, "$HOST/$R", '... dockerImageRepository';
my ($s2, $ist) = api($ngx, "$API/namespaces/scale/imagestreamtags/big:t1234");
is $s2, 200, 'an ImageStreamTag';
is $ist->{generation}, 1235, '... of its own generation';
is $ist->{image}{metadata}{name}, $img->{digest}, '... its image';

# a watch: the next push is one small event
my $rv = $is->{metadata}{resourceVersion};
my $w = watch_open($port, "$API/namespaces/scale/imagestreams?watch=true&resourceVersion=$rv");
is watch_status($w), 200, 'a watch';
my @imgs = map { image(layers => 1) } 1 .. 6;
is push_image($ngx, $R, 't5', $_)->{status}, 201, 'a new image on t5' for @imgs;
my @ev = map { watch_next($w, 5) } 1 .. 6;
is_deeply [map { $_ && $_->{type} } @ev], [('MODIFIED') x 6], 'six events';
my $e = $ev[5];
is_deeply [map { $_->{tag} } @{ $e->{object}{status}{tags} }], ['t5'],
    '... each with the tag changed only';
is_deeply [map { $_->{image} } @{ $e->{object}{status}{tags}[0]{items} }],
    [map { $_->{digest} } reverse @imgs[1 .. 5]], '... its history, bounded by the depth';
is $e->{object}{metadata}{generation}, $TAGS + 6, '... the stream\'s metadata';
is $e->{object}{metadata}{name}, 'big', '... its name';
my $len = length JSON::PP->new->canonical->encode($e);
cmp_ok $len, '<', 4096, "... and small ($len B with 5 entries)";
cmp_ok log_max(), '<', 4096, 'the largest watch-log entry still is';
close $w->{sock};

# a watch from scratch: the whole stream, ADDED
$w = watch_open($port, "$API/namespaces/scale/imagestreams?watch=true&timeoutSeconds=5");
my $added = watch_next($w, 10);
is $added->{type}, 'ADDED', 'a watch without resourceVersion: ADDED';
is scalar @{ $added->{object}{status}{tags} }, $TAGS, '... with every tag';
close $w->{sock};

# a tag deleted: an event saying so
$w = watch_open($port, "$API/namespaces/scale/imagestreams?watch=true&resourceVersion="
    . redis('GET', 'imagestreams:rv'));
is watch_status($w), 200, 'a watch';
is $ngx->request('DELETE', "/v2/$R/manifests/t7")->{status}, 202, 'DELETE tag t7';
$e = watch_next($w, 5);
is $e->{type}, 'MODIFIED', '... MODIFIED';
is_deeply $e->{object}{status}{tags}, [{ tag => 't7', items => [] }],
    '... t7 with an empty history: gone';
close $w->{sock};

# a stream written whole by an older version
my $old = image(layers => 1);
my $L = 'scale/legacy';
is push_image($ngx, $L, $_, $old)->{status}, 201, "legacy: push $_" for qw(a b);
my (undef, $whole) = api($ngx, "$API/namespaces/scale/imagestreams/legacy");
redis('DEL', "imagestream:$L", "imagestream:$L:tags", "imagestream:$L:images");
redis('SET', "imagestream:$L", JSON::PP->new->canonical->encode($whole));
is redis('TYPE', "imagestream:$L"), 'string', 'the old format: one string of JSON';
my (undef, $got) = api($ngx, "$API/namespaces/scale/imagestreams/legacy");
is_deeply $got, $whole, '... read as it is';
my (undef, $l) = api($ngx, "$API/namespaces/scale/imagestreams");
is_deeply [grep { $_->{metadata}{name} eq 'legacy' } @{ $l->{items} }], [$whole], '... listed';
my ($s3, $t3) = api($ngx, "$API/namespaces/scale/imagestreamtags/legacy:b");
is $s3, 200, '... its ImageStreamTag';
like admin('describe', 'imagestream', 'legacy', '-n', 'scale'), qr/^Tags:\s+2$/m, '... described';
my $new = image(layers => 1);
is push_image($ngx, $L, 'a', $new)->{status}, 201, 'a push to it';
is redis('TYPE', "imagestream:$L"), 'hash', '... split it';
(undef, $got) = api($ngx, "$API/namespaces/scale/imagestreams/legacy");
is_deeply [map { $_->{tag} } @{ $got->{status}{tags} }], ['a', 'b'], '... both tags';
is_deeply [map { $_->{image} } @{ $got->{status}{tags}[0]{items} }],
    [$new->{digest}, $old->{digest}], '... a with its old entry under the new';
is $got->{metadata}{generation}, 3, '... generation goes on';
is $got->{metadata}{uid}, $whole->{metadata}{uid}, '... same uid';
is redis('HGET', "imagestream:$L:images", $old->{digest}), 2, '... and the images it names counted';

$ngx->stop;
my $log = Registry::Harness::read_file("$ngx->{servroot}/logs/error.log") // '';
my @alerts = $log =~ /^(.*\[(?:alert|crit|emerg)\].*)$/mg;
is scalar @alerts, 0, 'no alert in the log' or diag join "\n", @alerts[0 .. 4];

done_testing;
