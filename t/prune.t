# `scripts/registry prune images`: history entries beyond the kept ones
# and the Images nothing keeps go, like `oc adm prune images`; a dry run
# changes nothing; the API and the tags list agree afterwards; watch and
# "delete" events go out.
#
# One nginx (authorization off) on a Redis of its own: the test reads
# the whole dataset to prove that a dry run writes nothing.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use JSON::PP;
use Registry::Harness qw(start_nginx free_ports start_redis);
use Registry::Auth qw(admin);
use Registry::Blobs ();
use Registry::Images qw(image index_of push_image api watch_open watch_next
    watch_status);

my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 70, 1);
my $redis = start_redis(port => free_ports(($ENV{TEST_NGINX_REDIS_PORT} || 16379) + 70, 1));
$ENV{TEST_NGINX_REDIS_PORT} = $redis->{port};
my $HOST = 'registry.test:5000';

my $ngx = start_nginx(port => $port, servroot => getcwd() . '/t/servroot-prune',
    root_location => 0, workers => 2,
    http_config => $Registry::Blobs::HttpConfig . <<"EOF",
    registry_public_host $HOST;
    registry_history_depth 10;
EOF
    config => $Registry::Blobs::Config);

my $API = '/apis/image.openshift.io/v1';
my $R = 'prproj/app';
sub redis { Registry::Blobs::redis_cli(@_) }
sub ok_push {
    my ($repo, $ref, $img, $what) = @_;
    my $r = push_image($ngx, $repo, $ref, $img);
    is $r->{status}, 201, "push $what" or diag $r->{body};
}
sub stream { my (undef, $s) = api($ngx, "$API/namespaces/prproj/imagestreams/app"); $s }
sub history {
    my ($s, $tag) = @_;
    my ($t) = grep { $_->{tag} eq $tag } @{ $s->{status}{tags} || [] };
    return [map { $_->{image} } @{ $t ? $t->{items} : [] }];
}
sub image_status { (api($ngx, "$API/images/$_[0]"))[0] }
# every key and a hash of its content (not DUMP: a hash table's order
# moves as Redis rehashes, reads included): what a dry run must leave
sub dataset {
    return redis('EVAL', q{
        local out = {}
        for _, k in ipairs(redis.call('KEYS', '*')) do
            local t, v = redis.call('TYPE', k).ok, nil
            if t == 'string' then
                v = {redis.call('GET', k)}
            elseif t == 'hash' or t == 'set' then
                local a = redis.call(t == 'hash' and 'HGETALL' or 'SMEMBERS', k)
                v = {}
                for i = 1, #a, (t == 'hash' and 2 or 1) do
                    v[#v + 1] = a[i] .. '=' .. (t == 'hash' and a[i + 1] or '')
                end
                table.sort(v)
            elseif t == 'zset' then
                v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
            elseif t == 'list' then
                v = redis.call('LRANGE', k, 0, -1)
            else
                v = {}
                for _, e in ipairs(redis.call('XRANGE', k, '-', '+')) do
                    v[#v + 1] = e[1] .. ' ' .. table.concat(e[2], ' ')
                end
            end
            out[#out + 1] = k .. ' ' .. redis.sha1hex(table.concat(v, '\n'))
        end
        table.sort(out)
        return table.concat(out, '\n')
    }, 0);
}
sub prune { admin('prune', 'images', @_) }

# the history: a1..a5 on tag a, b1 b2 on b, a2 again on c, an index and
# then m2 on multi, another index on multi2, one image by digest only,
# and a stream of another project
my @a = map { image(layers => 1) } 1 .. 5;
my @b = map { image(layers => 1) } 1 .. 2;
my ($c1, $c2, $c3, $c4) = map { image(layers => 1) } 1 .. 4;
my $idx = index_of($c1, $c2);
my $idx2 = index_of($c3, $c4);
my $m2 = image(layers => 1);
my $loose = image(layers => 1);
my $other = [map { image(layers => 1) } 1 .. 3];

ok_push($R, 'a', $_, 'to a') for @a;
ok_push($R, 'b', $_, 'to b') for @b;
ok_push($R, 'c', $a[1], 'a2 to c');
ok_push($R, 'multi', $idx, 'an index to multi');
ok_push($R, 'multi', $m2, 'an image over it');
ok_push($R, 'multi2', $idx2, 'another index to multi2');
ok_push($R, $loose->{digest}, $loose, 'an image by digest');
ok_push('prother/app', 'x', $_, 'to another project') for @$other;

my $s = stream();
is_deeply history($s, 'a'), [map { $_->{digest} } reverse @a], 'tag a: five entries';
is_deeply history($s, 'multi'), [$m2->{digest}, $idx->{digest}], 'multi: two';

# young: nothing goes
my $out = prune('--keep-tag-revisions=1', '--project=prproj', '--confirm');
like $out, qr/^Summary: deleted 0 history entries and 0 images/m,
    'younger than 60m (the default): nothing pruned';
is_deeply history(stream(), 'a'), history($s, 'a'), '... the history stays';

# 1. the dry run
my $before = dataset();
$out = prune('--keep-tag-revisions=1', '--keep-younger-than=0s', '--project=prproj');
like $out, qr/^Dry run enabled/, 'a dry run says so';
my @entries = $out =~ /^\Q$R\E\s+(\S+)\s+\d+\s+(sha256:\S+)/mg;
my %gone;
while (my ($t, $d) = splice @entries, 0, 2) { push @{ $gone{$t} }, $d }
is_deeply \%gone, {
    a => [map { $_->{digest} } @a[3, 2, 1, 0]],
    b => [$b[0]{digest}],
    multi => [$idx->{digest}],
}, '... lists the entries beyond the newest of each tag';
my %images = map { $_ => 1 } $out =~ /^(sha256:\S+)\s+\S+$/mg;
my @pruned = map { $_->{digest} } $a[0], $a[2], $a[3], $b[0], $idx, $c1, $c2, $loose;
is_deeply [sort keys %images], [sort @pruned],
    '... and the Images nothing keeps (a2 is on c; the children of the dropped index go)';
like $out, qr/^Summary: would delete 6 history entries and 8 images/m, '... its summary';
my %after = map { split / /, $_, 2 } split /\n/, dataset();
my %was = map { split / /, $_, 2 } split /\n/, $before;
my @changed = grep { ($after{$_} // '') ne ($was{$_} // '') } sort keys %{ { %was, %after } };
is_deeply \@changed, [], 'the dry run changed nothing in Redis';

# 2. for real, watched
my (undef, $list) = api($ngx, "$API/namespaces/prproj/imagestreams");
my $rv = $list->{metadata}{resourceVersion};
my $w = watch_open($port, "$API/namespaces/prproj/imagestreams?watch=true&resourceVersion=$rv");
is watch_status($w), 200, 'a watch';
my $xlen = redis('XLEN', 'events');

$out = prune('--keep-tag-revisions=1', '--keep-younger-than=0s', '--project=prproj',
    '--confirm');
unlike $out, qr/Dry run/, '--confirm: no dry run';
like $out, qr/^Summary: deleted 6 history entries and 8 images/m, '... the same counts';

$s = stream();
is_deeply history($s, 'a'), [$a[4]{digest}], 'a: the head only';
is_deeply history($s, 'b'), [$b[1]{digest}], 'b: the head only';
is_deeply history($s, 'c'), [$a[1]{digest}], 'c: unchanged';
is_deeply history($s, 'multi'), [$m2->{digest}], 'multi: the head only';
is_deeply history($s, 'multi2'), [$idx2->{digest}], 'multi2: unchanged';
my (undef, $tl) = api($ngx, "/v2/$R/tags/list");
is_deeply [map { $_->{tag} } @{ $s->{status}{tags} }], $tl->{tags}, 'stream tags == tags list';
is $s->{metadata}{resourceVersion}, redis('GET', 'imagestreams:rv'), 'the stream took the last resourceVersion';

for my $d (@pruned) {
    is image_status($d), 404, "Image $d pruned";
}
for my $d (map { $_->{digest} } $a[4], $a[1], $b[1], $m2, $idx2, $c3, $c4, @$other) {
    is image_status($d), 200, "Image $d kept";
}
is redis('ZCARD', 'images'), 7 + 3, 'the images set: 7 kept here, 3 of the other project';
for my $x ($a[0], $idx) {
    my $r = $ngx->request('GET', "/v2/$R/manifests/$x->{digest}", headers => [['Accept', $x->{type}]]);
    is $r->{status}, 200, 'a pruned image\'s manifest stays, untagged, for the collector';
}
is redis('SISMEMBER', "image:$c1->{digest}:parents", $idx->{digest}), 0,
    'the pruned index left its children\'s parents';

# the watch: one MODIFIED per tag changed, with that tag only
my @ev = map { watch_next($w, 5) } 1 .. 3;
is_deeply [map { $_ && $_->{type} } @ev], [qw(MODIFIED MODIFIED MODIFIED)], 'three watch events';
is_deeply [map { [map { $_->{tag} } @{ $_->{object}{status}{tags} }] } @ev], [['a'], ['b'], ['multi']],
    '... one per tag changed, carrying that tag';
is_deeply [map { $_->{image} } @{ $ev[0]{object}{status}{tags}[0]{items} }], [$a[4]{digest}],
    '... with its history as kept';
ok !defined watch_next($w, 1), '... and nothing more';
close $w->{sock};

# the events stream: a delete per Image (and repository), as a client's
my @x = split /\n/, redis('--raw', 'XRANGE', 'events', '-', '+');
my @del;
for (my $i = 0; $i < @x; $i++) {
    push @del, decode_json($x[$i + 1]) if $x[$i] eq 'envelope' && $i > 0;
}
@del = grep { $_->{events}[0]{action} eq 'delete' } @del;
is redis('XLEN', 'events') - $xlen, 8, 'eight events added';
is scalar @del, 8, '... all delete';
is_deeply [sort map { $_->{events}[0]{target}{digest} } @del], [sort @pruned], '... one per Image pruned';
my $e = $del[0]{events}[0];
is $e->{target}{repository}, $R, '... of its repository';
is_deeply [sort keys %$e], [qw(action actor id request source target timestamp)],
    '... shaped like a client delete\'s';
is_deeply [sort keys %{ $e->{target} }], [qw(digest repository)], '... target: digest and repository';
like $e->{timestamp}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, '... timestamp';
like $e->{id}, qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, '... id';
my %ids = map { $_->{events}[0]{id} => 1 } @del;
is scalar keys %ids, 8, '... ids differ';

# nothing left to do; the other project untouched
$out = prune('--keep-tag-revisions=1', '--keep-younger-than=0s', '--project=prproj', '--confirm');
like $out, qr/^Summary: deleted 0 history entries and 0 images/m, 'again: nothing more';
my (undef, $os) = api($ngx, "$API/namespaces/prother/imagestreams/app");
is scalar @{ $os->{status}{tags}[0]{items} }, 3, 'the other project kept its history';

# every project, keeping 2
$out = prune('--keep-tag-revisions', '2', '--keep-younger-than', '0s', '--confirm');
like $out, qr/^Summary: deleted 1 history entries and 1 images/m, 'all projects, keep 2';
(undef, $os) = api($ngx, "$API/namespaces/prother/imagestreams/app");
is_deeply [map { $_->{image} } @{ $os->{status}{tags}[0]{items} }],
    [map { $_->{digest} } @$other[2, 1]], '... the newest two';
is image_status($other->[0]{digest}), 404, '... the oldest Image went';

# a push afterwards goes on as usual
ok_push($R, 'a', $a[0], 'a1 again to a');
is_deeply history(stream(), 'a'), [$a[0]{digest}, $a[4]{digest}], 'a new head over the kept one';
is image_status($a[0]{digest}), 200, '... its Image made again';

# usage errors
for my $bad (['images', '--keep-younger-than=5x'], ['images', '--keep-tag-revisions=x'],
             ['images', '--bogus'], ['nothing']) {
    my $o = admin({ quiet => 1 }, 'prune', @$bad);
    is $o, '', "prune @$bad: refused";
}

$ngx->stop;
my $log = Registry::Harness::read_file("$ngx->{servroot}/logs/error.log") // '';
my @alerts = $log =~ /^(.*\[(?:alert|crit|emerg)\].*)$/mg;
is scalar @alerts, 0, 'no alert in the log' or diag join "\n", @alerts[0 .. 4];

done_testing;
