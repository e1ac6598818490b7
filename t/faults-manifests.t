# Manifests and image streams under hostile or heavy use (issue 9):
#   - a read of a reference that is neither a tag nor a digest is 404
#     MANIFEST_UNKNOWN (OCI conformance), a PUT of one stays 400;
#   - a descriptor whose size is not its blob's is 400 MANIFEST_INVALID;
#   - without registry_public_host, a client's Host header never reaches
#     what is stored (image stream, Image);
#   - watches of a stream whose events are ~0.25 MB each (a tag with
#     1,000 entries: an event carries the tag it changed): readers that
#     keep up get every event, in order, one that pauses catches up from
#     the watch log, and the worker survives (it crashed when a sent line,
#     over malloc's mmap threshold, was freed while the chunked filter
#     still held its buf); a watcher that does not read is dropped.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use JSON::PP;
use IO::Select;
use POSIX ();
use Time::HiRes qw(time sleep);
use Registry::Harness qw(start_nginx free_ports);
use Registry::Blobs qw(redis_cli);
use Registry::Images qw(image push_image push_blob watch_open watch_next
    watch_status d);

my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} // 1984) + 120, 2);
my $top = getcwd();

# one worker: a crash shows in its log, and every watch shares it.
# glibc gives big blocks back to the kernel on free() only until it
# raises its mmap threshold: fixed here, a read of a freed event faults
# every time, not now and then.
$ENV{MALLOC_MMAP_THRESHOLD_} = 65536;
my $ngx = start_nginx(port => $port, servroot => "$top/t/servroot-faults-manifests",
    root_location => 0, workers => 1, clean => 1,
    http_config => $Registry::Blobs::HttpConfig . "    registry_events_maxlen 200;\n"
        . "    registry_history_depth 1000;\n",
    config => $Registry::Blobs::Config . "    send_timeout 3s;\n");

my $P = "fm$$";
my $API = '/apis/image.openshift.io/v1';

# 1. malformed references

my $img = image(type => 'oci');
my $r = push_image($ngx, "$P/app", 'v1', $img);
is $r->{status}, 201, 'push an image' or diag $r->{body};

for my $m (qw(GET HEAD)) {
    for my $ref ('.INVALID_MANIFEST_NAME', '-bad', 'sha256:xyz', 't' x 129) {
        $r = $ngx->request($m, "/v2/$P/app/manifests/$ref");
        is $r->{status}, 404, "$m of reference " . substr($ref, 0, 24) . ': 404';
        like $r->{body}, qr/"MANIFEST_UNKNOWN"/, '... MANIFEST_UNKNOWN' if $m eq 'GET';
    }
}
$r = $ngx->request('PUT', "/v2/$P/app/manifests/.INVALID_MANIFEST_NAME",
    body => $img->{manifest}, headers => [['Content-Type', $img->{type}]]);
is $r->{status}, 400, 'PUT to a malformed tag: 400';
like $r->{body}, qr/"MANIFEST_INVALID".*invalid tag/, '... invalid tag';

# 2. descriptor sizes

sub manifest_with {
    my ($config_size, $layer_size) = @_;
    my $m = decode_json($img->{manifest});
    $m->{config}{size} = $config_size if defined $config_size;
    $m->{layers}[0]{size} = $layer_size if defined $layer_size;
    return encode_json($m);
}
my $layer_len = length $img->{layers}[0];
for my $case (['layer size + 1', undef, $layer_len + 1, $img->{layers}[0]],
              ['layer size 0', undef, 0, $img->{layers}[0]],
              ['config size - 1', length($img->{config}) - 1, undef, $img->{config}])
{
    my ($what, $cs, $ls, $blob) = @$case;
    $r = $ngx->request('PUT', "/v2/$P/app/manifests/sizes",
        body => manifest_with($cs, $ls), headers => [['Content-Type', $img->{type}]]);
    is $r->{status}, 400, "a manifest declaring the $what: 400";
    like $r->{body}, qr/"MANIFEST_INVALID".*\Q@{[d($blob)]}\E/, '... MANIFEST_INVALID naming the blob';
}
$r = $ngx->request('GET', "/v2/$P/app/manifests/sizes");
is $r->{status}, 404, '... and nothing was stored';
$r = $ngx->request('PUT', "/v2/$P/app/manifests/sizes",
    body => manifest_with(undef, $layer_len), headers => [['Content-Type', $img->{type}]]);
is $r->{status}, 201, 'the true sizes: 201';

# 3. the Host header is not stored

$r = push_image($ngx, "$P/host", 'hosttag', $img, ['Host', 'evil.example:5000']);
is $r->{status}, 201, 'push with Host: evil.example:5000';
$r = $ngx->request('GET', "$API/namespaces/$P/imagestreams/host");
is $r->{status}, 200, 'its image stream';
my $is = eval { decode_json($r->{body}) } || {};
$is = {} unless ref $is->{status};
my $ref = $is->{status}{tags}[0]{items}[0]{dockerImageReference} // '';
is $ref, "localhost:$port/$P/host\@$img->{digest}",
    'dockerImageReference: server_name and port, not the Host header';
is $is->{status}{dockerImageRepository}, "localhost:$port/$P/host", 'dockerImageRepository too';
unlike $r->{body}, qr/evil/, 'evil.example appears nowhere in the stream';

# 4. big events: a stream with 1,300 tags of 120 characters (a listing of
# ~0.5 MB) and a tag "hot" of 999 entries (~0.25 MB: each push to it is
# an event that big), made by the registry's own pushes would take
# minutes: its JSON is written once, in the format of an older version
# (one string), then real pushes change it.

my $B = "${P}b";         # a project of its own: one stream listed
my $N = 1300;
my $long = 'x' x 110;
my @tags = map { {
    tag => sprintf("seed%05d$long", $_),
    items => [{ created => '2024-01-01T00:00:00Z', image => $img->{digest}, generation => 1,
                dockerImageReference => "localhost:$port/$B/big\@$img->{digest}" }],
} } 1 .. $N;
unshift @tags, { tag => 'hot', items => [map { {
    created => '2024-01-01T00:00:00Z', image => $img->{digest}, generation => 1,
    dockerImageReference => "localhost:$port/$B/big\@$img->{digest}" } } 1 .. 999] };
my $seed = encode_json({ kind => 'ImageStream', apiVersion => 'image.openshift.io/v1',
    metadata => { name => 'big', namespace => $B, uid => '00000000-0000-4000-8000-000000000000',
                  generation => 1, creationTimestamp => '2024-01-01T00:00:00Z' },
    spec => { lookupPolicy => { local => JSON::PP::false } },
    status => { dockerImageRepository => "localhost:$port/$B/big", tags => \@tags } });
{
    open my $fh, '|-', 'redis-cli', '-p', $ENV{TEST_NGINX_REDIS_PORT}, '-x', 'SET',
        "imagestream:$B/big" or die "redis-cli: $!\n";
    print $fh $seed;
    close $fh or die "redis-cli SET failed\n";
}
redis_cli('ZADD', "project:$B:imagestreams", 0, 'big');
ok length($seed) > 400_000, 'the seeded stream is over 400 KB (' . length($seed) . ')';

$r = push_image($ngx, "$B/big", $img->{digest}, $img);
is $r->{status}, 201, 'the image in repository big';

# watchers: two that read at full speed, one that stops reading for 2 s
# (below send_timeout) after the listing, one that never reads
my @w = map { watch_open($port, "$API/namespaces/$B/imagestreams?watch=true") } 1 .. 3;
$w[2]{pause} = 2;
my $idle = watch_open($port, "$API/namespaces/$B/imagestreams?watch=true");
is watch_status($_, 10), 200, 'watch started' for @w, $idle;

# the pushes: 3 processes, $K new images each to the tag hot (an
# annotation apart), as fast as they go
my $K = $ENV{FM_K} || 30;
my @kids;
for my $k (1 .. 3) {
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        my $bad = 0;
        for my $i (1 .. $K) {
            my $t = 'hot';
            my $m = decode_json($img->{manifest});
            $m->{annotations} = { 'fm.push' => "$k-$i" };
            my $x = $ngx->request('PUT', "/v2/$B/big/manifests/$t", body => encode_json($m),
                headers => [['Content-Type', $img->{type}]], timeout => 60);
            next if $x->{status} == 201;
            $bad++;
            warn "push $t: $x->{status} " . ($x->{error} // $x->{body}) . "\n" if $bad < 3;
        }
        POSIX::_exit($bad ? 1 : 0);     # no END blocks: they stop nginx
    }
    push @kids, $pid;
}

# read both watches as they come, without waiting for the pushes (a
# reader of its own: EINTR is not the end, lines of 0.5 MB are cut
# without rescanning, and summed up by patterns: JSON::PP would take
# seconds per event, a client too slow to be called a reader)
sub summary {
    my ($line) = @_;
    my ($type) = $line =~ /"type":"(\w+)"/;
    my ($rv) = $line =~ /"resourceVersion":"(\d+)"/;
    my $tags = () = $line =~ /"tag":"/g;
    my $items = () = $line =~ /"image":"/g;
    return { type => $type, rv => $rv, tags => $tags, items => $items, bytes => length $line };
}
sub take {
    my ($w) = @_;
    my $n = sysread($w->{sock}, my $buf, 1 << 20);
    if (!defined $n) {
        return if $!{EINTR} || $!{EAGAIN};
        $w->{ended} = "read: $!";
        return;
    }
    if ($n == 0) {
        $w->{ended} = 'closed by the server';
        return;
    }
    $w->{raw} .= $buf;
    while ($w->{raw} =~ /^([0-9a-fA-F]+)\r\n/) {
        my ($len, $hl) = (hex $1, length($1) + 2);
        last if length($w->{raw}) < $hl + $len + 2;
        $w->{body} .= substr($w->{raw}, $hl, $len);
        substr($w->{raw}, 0, $hl + $len + 2) = '';
        $w->{ended} = 'last chunk' if $len == 0;
    }
    while ((my $i = index($w->{body} // '', "\n")) >= 0) {
        push @{ $w->{events} }, summary(substr($w->{body}, 0, $i));
        substr($w->{body}, 0, $i + 1) = '';
    }
}
my $want = 1 + 3 * $K;      # the ADDED of the listing, then one per push
for my $w (@w) {
    # the listing already read by watch_status stays in lines/body
    $w->{events} = [map { summary($_) } @{ $w->{lines} }];
    $w->{lines} = [];
}
my $deadline = time + 120;
while (time < $deadline) {
    my @open = grep { !$_->{ended} && @{ $_->{events} } < $want } @w;
    last unless @open;
    for my $w (grep { $_->{pause} && @{ $_->{events} } } @open) {
        $w->{resume} //= time + $w->{pause};
    }
    @open = grep { !$_->{resume} || time > $_->{resume} } @open;
    if (!@open) {
        sleep 0.1;
        next;
    }
    my %by = map { fileno($_->{sock}) => $_ } @open;
    my $sel = IO::Select->new(map { $_->{sock} } @open);
    take($by{ fileno $_ }) for $sel->can_read(1);
}
my %got = map { $_ => $w[$_]{events} } 0 .. $#w;
my %bytes;
for my $i (0 .. $#w) { $bytes{$i} += $_->{bytes} for @{ $w[$i]{events} } }
for my $pid (@kids) {
    waitpid $pid, 0;
    is $?, 0, "pusher $pid: every push 201";
}
for my $i (0 .. $#w) {
    my @ev = @{ $got{$i} };
    is scalar @ev, $want, ($i == 2 ? 'the watcher that paused' : "reading watcher $i")
        . ": every event ($want)";
    ok !$w[$i]{ended}, "... and its watch is still open" or diag $w[$i]{ended};
    is $ev[0]{type}, 'ADDED', '... the listing first';
    my @rv = map { $_->{rv} } @ev[1 .. $#ev];
    is_deeply \@rv, [sort { $a <=> $b } @rv], '... then the changes in order';
    is $ev[0]{tags}, $N + 1, '... the listing has every tag';
    is_deeply [map { $_->{tags} } @ev[1 .. $#ev]], [(1) x (3 * $K)],
        '... each change the one it changed';
    is $ev[-1]{items}, 1000, '... the last with its whole history';
    ok $bytes{$i} > 20_000_000, "... $bytes{$i} bytes read";
}

# the watcher that never read is dropped (send_timeout 3s) or bounded
my $t0 = time;
sleep 0.2 until time - $t0 > 8 || $ngx->error_log =~ /watch (dropped|client timed out)/;
like $ngx->error_log, qr/watch (dropped|client timed out)/, 'the idle watcher is dropped';
close $_->{sock} for @w, $idle;

my $log = $ngx->error_log;
unlike $log, qr/exited on signal|\[alert\]|\[emerg\]/, 'no worker crashed' or diag $log;
unlike $log, qr/the client does not read.*\n(?s:.*)the client does not read/,
    'the client does not read: at most once (the idle one)';

redis_cli('DEL', map({ ($_, "$_:tags", "$_:images") }
        "imagestream:$B/big", "imagestream:$P/app", "imagestream:$P/host"),
    "project:$B:imagestreams", "project:$P:imagestreams");
$ngx->stop;
done_testing;
