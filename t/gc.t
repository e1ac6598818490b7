# Garbage collection, for real (issue 12): real nginx, Redis and RGW.
#
#   - a blob DELETEd from its last repository: kept within the grace, a
#     dry run counts it and changes nothing, then the collection deletes
#     its object from the bucket, counts its bytes and sends a delete
#     event;
#   - pacing: a collection with ?duty=10 rests longer than it works (and
#     for real), one with ?duty=100 does not rest;
#   - data of a registry older than the collector (no refs:D, unused
#     blobs not queued) is indexed once before any blob is taken;
#   - a blob a manifest names is kept; gc --untagged takes a manifest
#     without tag (not a young one, not one an index lists, not a
#     referrer of a kept one, not one in its image stream's history) and
#     its layers follow;
#   - the race: pushes of images sharing layers, while another client
#     makes those layers garbage again and again and collections run
#     back to back with no grace: every manifest pushed reads back with
#     all its blobs (digests checked), and every linked blob has its
#     object;
#   - sessions: an expired one's multipart upload is aborted, a
#     cancelled one leaves nothing, --uploads-older-than ends idle ones,
#     and the tails all sessions keep in Redis are bounded (429);
#   - orphans: a push whose commit Redis never got (writes paused) leaves
#     its object, found through objects:pending and deleted after the
#     grace (and registry_upload_expires: pushes in flight are no
#     orphans); a multipart upload nothing recorded is aborted;
#   - two nginx on one Redis, each with a collector every second: they
#     wait while the lease is held, then one of them collects.
#
# It runs its own redis-server and uses a bucket of its own (its checks
# are Redis- and bucket-wide).  Repositories: gct/* (this file only).
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd ();
use Digest::SHA qw(sha256_hex);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep time);
use Registry::Blobs qw($HttpConfig $Config d random_bytes s3 s3_objects s3_uploads
    uri_escape own_bucket);
use Registry::Harness qw(start_nginx start_redis free_ports read_file nginx_check);
use Registry::Images qw(image index_of push_image push_blob);

plan skip_all => 'redis-server and redis-cli are needed'
    if system('command -v redis-server redis-cli >/dev/null 2>&1') != 0;

my $MiB = 1024 * 1024;
my $top = Cwd::getcwd();
own_bucket('registry-test-gc');

my $rport = free_ports(($ENV{TEST_NGINX_REDIS_PORT} // 16379) + 40, 1);
my $redis = start_redis(port => $rport);
my $base = free_ports(($ENV{TEST_NGINX_SERVER_PORT} // 1984) + 140, 4);

(my $http = $HttpConfig) =~ s/\$TEST_NGINX_REDIS_PORT/$rport/;
$http .= "    registry_redis_timeout 2s;\n";
sub gc_location { "    location = /_registry/gc { registry_gc $_[0]; }\n" }

sub rcli {
    open my $fh, '-|', 'redis-cli', '-p', $rport, @_ or die "redis-cli: $!\n";
    local $/;
    my $out = <$fh> // '';
    close $fh;
    $out =~ s/\n\z//;
    return $out;
}

# one collection (the first answer: a test's collections are small)
sub gc {
    my ($ngx, %q) = @_;
    my $qs = join '&', map { "$_=$q{$_}" } sort keys %q;
    my $r = $ngx->request('GET', '/_registry/gc' . ($qs ? "?$qs" : ''), timeout => 120);
    my $j = eval { decode_json($r->{body}) } // { status => $r->{status}, body => $r->{body} };
    $j->{status} = $r->{status};
    return $j;
}

# scripts/registry gc ARGS against an instance: (exit status, output)
sub gc_cmd {
    my ($ngx, @args) = @_;
    local $ENV{REGISTRY_GC_URL} = $ngx->url('/_registry/gc');
    my $out = `'$top/scripts/registry' gc @args 2>&1`;
    return ($? >> 8, $out);
}

sub named { my ($g, $kind) = @_; [sort map { $_->{name} } grep { $_->{kind} eq $kind } @{ $g->{removed} || [] }] }

# the delete events of a digest, oldest first: [repository, ...]
sub delete_events {
    my ($digest) = @_;
    my @lines = split /\n/, rcli('--raw', 'XRANGE', 'events', '-', '+');
    my (@out, %e);
    for my $i (0 .. $#lines) {
        if ($lines[$i] =~ /^\d+-\d+$/) {
            push @out, $e{repository} if %e && $e{action} eq 'delete' && $e{digest} eq $digest;
            %e = ();
        } elsif ($lines[$i] =~ /^(action|repository|digest)$/ && $i < $#lines) {
            $e{$1} = $lines[$i + 1];
        }
    }
    push @out, $e{repository} if %e && $e{action} eq 'delete' && $e{digest} eq $digest;
    return \@out;
}

# the same, once there are $n (events are added in the background)
sub wait_events {
    my ($digest, $n) = @_;
    my $deadline = time + 3;
    my $e = delete_events($digest);
    while (@$e < $n && time < $deadline) {
        sleep 0.05;
        $e = delete_events($digest);
    }
    return $e;
}

sub head_key { s3('HEAD', $_[0])->{status} }

# an unrecorded multipart upload, as a worker killed between creating it
# and recording it leaves: made first, checked at the end (a collection
# leaves those younger than a minute: they may be about to be recorded)
my $lost_id = unpack 'H*', random_bytes(16);
my $lost = s3('POST', "data/$lost_id?uploads=", body => '');
my $lost_made = time;
die "CreateMultipartUpload: $lost->{status}\n" unless $lost->{status} == 200;

my $A = start_nginx(port => $base, servroot => "$top/t/servroot-gc-a", root_location => 0,
    log_level => 'info', http_config => $http . "    registry_upload_tails 2m;\n",
    config => $Config . gc_location('grace=1h')
        . "    location = /metrics { registry_metrics; }\n");

# a counter of the collector in the Prometheus text (metrics.c)
sub gc_metric {
    my ($name) = @_;
    my $body = $A->request('GET', '/metrics')->{body} // '';
    return $body =~ /^\Q$name\E (\d+)$/m ? $1 : undef;
}

# --- 1. a blob deleted, then collected after the grace --------------------

{
    my $blob = random_bytes(3000);
    my $D = d($blob);
    is push_blob($A, 'gct/a', $blob)->{status}, 201, 'a blob pushed to gct/a';
    my $key = rcli('HGET', "blob:$D", 'key');
    is head_key($key), 200, "... its object $key is in the bucket";
    is $A->request('DELETE', "/v2/gct/a/blobs/$D")->{status}, 202, 'DELETE of the blob: 202';
    my $t0 = time;
    my $g = gc($A, grace => 3);
    is "$g->{status} $g->{blobs}", '200 0', 'a collection within the grace (3 s) leaves it';
    is head_key($key), 200, '... its object too';
    $g = gc($A, grace => 0, dry_run => 1);
    ok $g->{dry_run}, 'a dry run with no grace';
    is "$g->{blobs} $g->{bytes}", '1 3000', '... counts it: 1 blob, 3000 bytes';
    is_deeply named($g, 'blob'), [$D], '... and names it';
    is rcli('EXISTS', "blob:$D") . head_key($key), '1200', '... and changes nothing';
    my ($rc, $out) = gc_cmd($A, '--dry-run', '--grace=0s');
    is $rc, 0, 'scripts/registry gc --dry-run --grace=0s' or diag $out;
    like $out, qr/^would remove blob \Q$D\E 3000 bytes \(gct\/a\)$/m, '... lists the blob';
    like $out, qr/^Dry run, nothing removed\. Would remove: 0 manifests, 1 blobs \(2\.9Ki, 3000 bytes\)/m,
        '... and the total';
    my %m0 = map { $_ => gc_metric($_) } qw(registry_gc_runs_total
        registry_gc_blobs_deleted_total registry_gc_reclaimed_bytes_total);
    ($rc, $out) = gc_cmd($A, '--grace=1h30m');
    like $out, qr/^Removed: 0 manifests, 0 blobs/m, 'scripts/registry gc --grace=1h30m removes nothing';
    sleep 3.1 - (time - $t0) if time - $t0 < 3.1;
    ($rc, $out) = gc_cmd($A, '--grace=3s');
    like $out, qr/^blob \Q$D\E 3000 bytes \(gct\/a\)$/m, 'after the grace, scripts/registry gc --grace=3s names it';
    like $out, qr/^Removed: 0 manifests, 1 blobs \(2\.9Ki, 3000 bytes\)/m, '... 1 blob collected, 3000 bytes';
    is head_key($key), 404, '... its object is gone from the bucket';
    is join(' ', map { gc_metric($_) - $m0{$_} } sort keys %m0), '1 3000 2',
        '... counted in the metrics: 1 blob, 3000 bytes, 2 runs (dry runs not)';
    is rcli('EXISTS', "blob:$D") . rcli('SISMEMBER', 'blobs', $D) . rcli('ZSCORE', 'objects:pending', $key),
        '00', '... and blob:D from Redis, its key not left pending';
    is_deeply wait_events($D, 2), ['gct/a', 'gct/a'], '... a delete event, as for the DELETE';
    is $A->request('GET', "/v2/gct/a/blobs/$D")->{status}, 404, '... GET: 404';
    $g = gc($A, grace => 0);
    is $g->{blobs}, 0, 'the next collection finds nothing';
}

# --- 1b. pacing: the collector rests (100 - duty) / duty of its time ------

{
    # garbage of a few batches (gc.c takes 100 candidates per function)
    my $garbage = sub {
        for (1 .. $_[0]) {
            my $blob = random_bytes(100);
            push_blob($A, 'gct/pace', $blob)->{status} == 201
                && $A->request('DELETE', '/v2/gct/pace/blobs/' . d($blob))->{status} == 202
                or return 0;
        }
        return 1;
    };
    # a refused request collects nothing, even with grace=0 in it
    my $kept = random_bytes(100);
    ok push_blob($A, 'gct/pace', $kept)->{status} == 201
        && $A->request('DELETE', '/v2/gct/pace/blobs/' . d($kept))->{status} == 202,
        'a blob pushed to gct/pace and deleted';
    for my $bad (0, 101, 'x') {
        my $g = gc($A, grace => 0, duty => $bad);
        is "$g->{status} " . ($g->{errors}[0]{code} // ''), '400 UNSUPPORTED', "?duty=$bad: 400";
    }
    my $g = gc($A, grace => 'x');
    is "$g->{status} " . ($g->{errors}[0]{code} // ''), '400 UNSUPPORTED', '?grace=x: 400';
    sleep 0.5;
    is rcli('EXISTS', 'blob:' . d($kept)), 1, '... and none of them collected the unused blob';
    is rcli('EXISTS', 'gc:lease'), 0, '... nor holds the lease';
    ok $garbage->(250), '250 blobs pushed to gct/pace and deleted';
    my $t0 = time;
    $g = gc($A, grace => 0, duty => 10);
    my $ms = (time - $t0) * 1000;
    is "$g->{blobs} $g->{duty}", '251 10', 'a collection with ?duty=10 takes them (and the one before)';
    ok $g->{worked_ms} > 0 && $g->{rested_ms} >= $g->{worked_ms},
        "... it rested more than it worked ($g->{rested_ms} ms, $g->{worked_ms} ms)";
    ok $ms >= $g->{rested_ms}, "... for real: the request took $ms ms";
    ok $garbage->(250), '250 more';
    $g = gc($A, grace => 0, duty => 100);
    is "$g->{blobs} $g->{rested_ms}", '250 0', '?duty=100: taken without rest';
    my ($rc, $out) = gc_cmd($A, '--grace=0s', '--duty=5%');
    like $out, qr/^Worked [0-9.]+ s, rested [0-9.]+ s \(duty 5%\)$/m,
        'scripts/registry gc --duty=5% says how long it worked and rested' or diag $out;
    ($rc, $out) = gc_cmd($A, '--duty=0%');
    isnt $rc, 0, '... --duty=0% is refused';
    for my $p ('duty=0%', 'duty=101%', 'duty=x') {
        ($rc, $out) = nginx_check(port => $base + 3, servroot => "$top/t/servroot-gc-conf",
            root_location => 0, http_config => $http, config => $Config . gc_location($p));
        ok $rc != 0 && $out =~ /invalid parameter "\Q$p\E"/, "nginx -t refuses registry_gc $p";
    }
}

# --- 1c. data of a registry older than the collector ---------------------

# Before the collector, manifests kept no refs:D and unlinked blobs went
# to no gc:blobs: such data is made here by removing those keys.  The
# first collection indexes it (gc:index) before it takes any blob.
{
    my $img = image(layers => 1);
    is push_image($A, 'gct/old', 'v1', $img)->{status}, 201, 'gct/old:v1 pushed';
    my $L = d($img->{layers}[0]);
    my $lkey = rcli('HGET', "blob:$L", 'key');
    for my $b ($img->{config}, @{ $img->{layers} }) {
        rcli('SREM', 'refs:' . d($b), "gct/old\@$img->{digest}");
    }
    rcli('HDEL', "image:$img->{digest}", 'refs');
    my $junk = random_bytes(1500);
    my $J = d($junk);
    is push_blob($A, 'gct/old', $junk)->{status}, 201, 'a blob pushed to gct/old';
    is $A->request('DELETE', "/v2/gct/old/blobs/$J")->{status}, 202, '... and deleted';
    rcli('ZREM', 'gc:blobs', $J);
    rcli('DEL', 'gc:index');
    is $A->request('DELETE', "/v2/gct/old/blobs/$L")->{status}, 202,
        'the link of a layer the (old) manifest names, deleted';
    my $g = gc($A, grace => 0, dry_run => 1);
    is rcli('EXISTS', 'gc:index'), 0, 'a dry run does not index';
    is $g->{indexed}, JSON::PP::false, '... and says so ("indexed": false)';
    my ($rc, $out) = gc_cmd($A, '--dry-run', '--grace=0s');
    like $out, qr/not indexed yet/, '... as scripts/registry gc --dry-run does' or diag $out;
    $g = gc($A, grace => 0);
    ok rcli('HGET', 'gc:index', 'done'), 'the first collection indexed the old data' or diag explain $g;
    is rcli('SISMEMBER', "refs:$L", "gct/old\@$img->{digest}"), 1, '... refs:D of the layer again';
    is rcli('EXISTS', "blob:$L") . head_key($lkey), '1200', '... so the layer the manifest names stays';
    ok((grep { $_ eq $J } @{ named($g, 'blob') }), '... and the blob unused before the collector went');
    is $A->request('GET', "/v2/gct/old/manifests/v1")->{status}, 200, 'gct/old:v1 reads back';
    is gc($A, grace => 0, dry_run => 1)->{indexed}, JSON::PP::true, 'a dry run after it: "indexed": true';
    ($rc, $out) = gc_cmd($A, '--dry-run', '--grace=0s');
    unlike $out, qr/not indexed yet/, '... and scripts/registry gc --dry-run says nothing of it';
}

# --- 2. manifests keep their blobs; gc --untagged ------------------------

{
    my $img = image(layers => 2);
    is push_image($A, 'gct/b', 'v1', $img)->{status}, 201, 'an image pushed as gct/b:v1';
    my @blobs = ($img->{config}, @{ $img->{layers} });
    my @keys = map { rcli('HGET', 'blob:' . d($_), 'key') } @blobs;
    my $L = d($img->{layers}[0]);
    is $A->request('DELETE', "/v2/gct/b/blobs/$L")->{status}, 202, 'a layer DELETEd from gct/b';
    my $g = gc($A, grace => 0);
    is $g->{blobs}, 0, '... kept: the manifest names it';
    is head_key($keys[1]), 200, '... its object too';

    is $A->request('DELETE', '/v2/gct/b/manifests/v1')->{status}, 202, 'the tag v1 deleted';
    $g = gc($A, untagged => 1, grace => 3600);
    is $g->{manifests}, 0, 'gc --untagged: the manifest pushed within the grace stays';
    $g = gc($A, untagged => 1, grace => 0, dry_run => 1);
    is $g->{manifests}, 1, 'a dry run with no grace counts it';
    is $A->request('GET', "/v2/gct/b/manifests/$img->{digest}")->{status}, 200, '... and leaves it';
    $g = gc($A, untagged => 1, grace => 0);
    is $g->{manifests}, 1, 'gc --untagged with no grace takes the untagged manifest';
    is_deeply named($g, 'manifest'), [$img->{digest}], '... named';
    is $g->{blobs}, 3, '... and its config and layers follow';
    my $bytes = 0;
    $bytes += length for @blobs;
    is $g->{bytes}, $bytes, "... $bytes bytes";
    is $A->request('GET', "/v2/gct/b/manifests/$img->{digest}")->{status}, 404, '... manifest GET: 404';
    is join(' ', map { head_key($_) } @keys), '404 404 404', '... their objects are gone';
    is_deeply wait_events($img->{digest}, 2), ['gct/b', 'gct/b'],
        '... a delete event for the manifest (after the tag\'s)';
    is $g->{images}, 1, '... and its Image, held by no repository';
    is rcli('EXISTS', "image:$img->{digest}"), 0, '... image:D gone';

    # an index and its children; a referrer and its subject; history
    my ($c1, $c2) = (image(), image());
    my $idx = index_of($c1, $c2);
    is push_image($A, 'gct/c', 'multi', $idx)->{status}, 201, 'an index pushed as gct/c:multi';
    my $t = image();
    is push_image($A, 'gct/c', 't', $t)->{status}, 201, 'an image pushed as gct/c:t';
    is push_blob($A, 'gct/c', '{}')->{status}, 201, 'the empty config';
    my $sig = JSON::PP->new->canonical->encode({
        schemaVersion => 2, mediaType => 'application/vnd.oci.image.manifest.v1+json',
        artifactType => 'application/vnd.example.signature',
        config => { mediaType => 'application/vnd.oci.empty.v1+json', digest => d('{}'), size => 2 },
        layers => [],
        subject => { mediaType => $t->{type}, digest => $t->{digest}, size => length $t->{manifest} },
    });
    is $A->request('PUT', '/v2/gct/c/manifests/' . d($sig), body => $sig,
        headers => [['Content-Type', 'application/vnd.oci.image.manifest.v1+json']])->{status}, 201,
        'a referrer of gct/c:t pushed by digest';
    my $old = image();
    my $new = image();
    is push_image($A, 'gct/c', 'moved', $old)->{status}, 201, 'gct/c:moved pushed';
    is push_image($A, 'gct/c', 'moved', $new)->{status}, 201, '... and moved to another image';
    $g = gc($A, untagged => 1, grace => 0);
    is $g->{manifests}, 0, 'gc --untagged keeps index children, a referrer of a tagged image, '
        . 'and history' or diag explain $g;
    is $A->request('DELETE', '/v2/gct/c/manifests/t')->{status}, 202, 'the tag t deleted';
    $g = gc($A, untagged => 1, grace => 0);
    is_deeply named($g, 'manifest'), [sort $t->{digest}, d($sig)],
        '... then gc --untagged takes the image and its referrer';
    is $A->request('GET', "/v2/gct/c/manifests/$c1->{digest}")->{status}, 200, '... an index child stays';
    is $A->request('GET', "/v2/gct/c/manifests/$old->{digest}")->{status}, 200, '... an image in history stays';
    is $A->request('GET', '/v2/gct/c/blobs/' . d($c1->{layers}[0]))->{status}, 200, '... with its layers';
}

# --- 3. the race: pushes while their layers are collected ----------------

# Three pushers, each with layers of its own: it pushes an image to a new
# repository, reads it back whole, then deletes its manifest and blobs
# (the layers are garbage: no link, no manifest) and pushes the next
# image, with the same layers, at once; meanwhile collections run back to
# back with no grace.  Each push either finds the layers still there and
# links them, or finds them collected and stores them again: every image
# pushed reads back whole, right away and (the last ones) at the end.
sub whole {
    my ($ngx, $repo, $digest, @blobs) = @_;
    my $r = $ngx->request('GET', "/v2/$repo/manifests/$digest");
    return 0 unless $r->{status} == 200 && d($r->{body}) eq $digest;
    for my $b (@blobs) {
        my $g = $ngx->request('GET', "/v2/$repo/blobs/" . d($b), timeout => 30);
        return 0 unless $g->{status} == 200 && sha256_hex($g->{body}) eq sha256_hex($b);
    }
    return 1;
}

{
    my @kids;
    for my $k (1 .. 3) {
        pipe my $rd, my $wr or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $rd;
            my @layers = map { random_bytes(48 * 1024) } 1 .. 3;
            for my $i (1 .. 12) {
                my $img = image(layers => [@layers]);
                my $repo = "gct/race$k-$i";
                my $r = eval { push_image($A, $repo, 'v1', $img) };
                my $st = $r ? $r->{status} : ($@ =~ /: (\d{3}) / ? $1 : 0);
                # read back once collections ran past it
                my $seen = rcli('GET', 'gct:runs') || 0;
                my $deadline = time + 10;
                sleep 0.05 while (rcli('GET', 'gct:runs') || 0) < $seen + 2 && time < $deadline;
                my $ok = $st == 201 ? whole($A, $repo, $img->{digest}, $img->{config}, @layers) : 0;
                print $wr join(' ', $st, $ok, $repo, $img->{digest}, unpack('H*', $img->{config}),
                    unpack('H*', join '', @layers), ($@ ? $@ =~ s/\s+/_/gr : '-')), "\n";
                next if $i == 12;
                # garbage again: the next push reuses the layers
                $A->request('DELETE', "/v2/$repo/manifests/$img->{digest}");
                $A->request('DELETE', "/v2/$repo/blobs/" . d($_)) for $img->{config}, @layers;
            }
            close $wr;
            POSIX::_exit(0);
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    my ($runs, $taken) = (0, 0);
    my $sel = IO::Select->new(map { $_->[1] } @kids);
    my @results;
    while ($sel->count) {
        my $g = gc($A, grace => 0);
        $runs++;
        rcli('INCR', 'gct:runs');
        $taken += $g->{blobs} // 0;
        for my $fh ($sel->can_read(0)) {
            my $line = <$fh>;
            if (defined $line) { push @results, $line } else { $sel->remove($fh) }
        }
    }
    waitpid $_->[0], 0 for @kids;
    $taken += gc($A, grace => 0)->{blobs};
    note "race: $runs collections took $taken blobs while 36 images were pushed";
    cmp_ok $taken, '>', 0, 'collections took the layers between the pushes';
    is scalar(@results), 36, '36 pushes ended';
    my @bad = grep { !/^201 / } @results;
    is scalar(@bad), 0, '... all pushed' or diag map { substr($_, 0, 100) . "...\n" } @bad;
    my @broken = grep { /^201 0 / } @results;
    is scalar(@broken), 0, '... each read back whole (blob digests checked) right after'
        or diag map { substr($_, 0, 100) . "...\n" } @broken;
    my $last = 0;
    for my $line (grep { m{ gct/race\d-12 } } @results) {
        my (undef, undef, $repo, $digest, $config, $layers) = split / /, $line;
        my $l = pack 'H*', $layers;
        my @l = map { substr($l, $_ * 48 * 1024, 48 * 1024) } 0 .. 2;
        $last += whole($A, $repo, $digest, pack('H*', $config), @l);
    }
    is $last, 3, '... and the last ones still after more collections';
    my @dangling;
    for my $D (split /\n/, rcli('SMEMBERS', 'blobs')) {
        next unless rcli('SCARD', "blob:$D:links") > 0;
        my $key = rcli('HGET', "blob:$D", 'key');
        push @dangling, $D if head_key($key) != 200;
    }
    is scalar(@dangling), 0, 'every linked blob has its object' or diag "@dangling";
    my $again = () = $A->error_log =~ /collected meanwhile, stored again/g;
    note "pushes that found their blob collected after checking it, and stored it again: $again";
}

# --- 4. upload sessions ----------------------------------------------------

sub id_of { ($_[0] // '') =~ m{/blobs/uploads/([0-9a-f]{32})$} ? $1 : '' }

sub patch {
    my ($ngx, $loc, $data, $from) = @_;
    return $ngx->request('PATCH', $loc, body => $data, timeout => 60,
        headers => [['Content-Type', 'application/octet-stream'],
                    ['Content-Range', "$from-" . ($from + length($data) - 1)]]);
}

sub upload_keys { rcli('KEYS', "upload:$_[0]*") }

{
    my $C = start_nginx(port => $base + 1, servroot => "$top/t/servroot-gc-c", root_location => 0,
        http_config => $http . "    registry_upload_expires 2s;\n",
        config => $Config . gc_location('grace=1h'));
    my $loc = $C->request('POST', '/v2/gct/up/blobs/uploads/')->{headers}{location};
    my $id = id_of($loc);
    is patch($C, $loc, random_bytes(6 * $MiB), 0)->{status}, 202, 'a session with a 6 MiB part';
    ok scalar(grep { $_ eq "data/$id" } @{ s3_uploads('data/') }), '... its multipart upload is in S3';
    sleep 3;
    is upload_keys($id), '', '... the session expired in Redis (registry_upload_expires 2s)';
    ok scalar(grep { $_ eq "data/$id" } @{ s3_uploads('data/') }), '... its multipart upload is still in S3';
    my $g = gc($C);
    cmp_ok $g->{uploads}, '>=', 1, 'a collection ends the expired session';
    ok !grep({ $_ eq "data/$id" } @{ s3_uploads('data/') }), '... its multipart upload is aborted';
    is rcli('ZSCORE', 'uploads', $id) . rcli('HGET', 'uploads:mpu', $id)
        . rcli('ZSCORE', 'objects:pending', "data/$id"), '', '... and nothing of it stays in Redis';
    $C->stop;

    # cancelled: nothing stays (its index entry goes with the next collection)
    $loc = $A->request('POST', '/v2/gct/up/blobs/uploads/')->{headers}{location};
    $id = id_of($loc);
    is patch($A, $loc, random_bytes(1000), 0)->{status}, 202, 'a session with 1000 bytes in its tail';
    is rcli('HGET', 'uploads:tail', $id), 1000, '... counted among the tails';
    my $tails = rcli('GET', 'uploads:tails');
    is $A->request('DELETE', $loc)->{status}, 204, '... cancelled';
    is upload_keys($id) . rcli('HGET', 'uploads:tail', $id), '', '... its keys are gone';
    is rcli('GET', 'uploads:tails'), $tails - 1000, '... and its tail no longer counts';
    $g = gc($A, uploads_older_than => 0);
    is rcli('ZSCORE', 'uploads', $id), '', '... the next collection forgets it';

    # idle: --uploads-older-than
    $loc = $A->request('POST', '/v2/gct/up/blobs/uploads/')->{headers}{location};
    $id = id_of($loc);
    is patch($A, $loc, random_bytes(2000), 0)->{status}, 202, 'another session, idle';
    $g = gc($A, uploads_older_than => 60);
    is $g->{uploads}, 0, 'gc --uploads-older-than=1m leaves it';
    sleep 2.1;
    $g = gc($A, uploads_older_than => 1);
    is $g->{uploads}, 1, 'gc --uploads-older-than=1s ends it';
    is $A->request('GET', $loc)->{status}, 404, '... GET of the session: 404';
    is upload_keys($id) . rcli('ZSCORE', 'uploads', $id), '', '... nothing of it in Redis';

    # the bound of all tails (registry_upload_tails 2m)
    my $l1 = $A->request('POST', '/v2/gct/up/blobs/uploads/')->{headers}{location};
    my $l2 = $A->request('POST', '/v2/gct/up/blobs/uploads/')->{headers}{location};
    is patch($A, $l1, random_bytes(int(1.5 * $MiB)), 0)->{status}, 202, '1.5 MiB wait in a tail';
    my $r = patch($A, $l2, random_bytes($MiB), 0);
    is $r->{status}, 429, 'one more MiB in another session passes registry_upload_tails 2m: 429';
    like $r->{body}, qr/"code":"TOOMANYREQUESTS"/, '... TOOMANYREQUESTS';
    is $A->request('DELETE', $l1)->{status}, 204, 'the first session cancelled';
    is patch($A, $l2, random_bytes($MiB), 0)->{status}, 202, '... the MiB fits now';
    $A->request('DELETE', $l2);
}

# --- 5. orphans --------------------------------------------------------------

{
    # orphans are older than the grace and than registry_upload_expires
    # (a monolithic push in flight has no session): collected through an
    # instance whose sessions expire after 2 s
    my $E = start_nginx(port => $base + 1, servroot => "$top/t/servroot-gc-e", root_location => 0,
        http_config => $http . "    registry_upload_expires 2s;\n",
        config => $Config . gc_location('grace=1h'));

    # a streamed push whose commit never reaches Redis: writes paused once
    # its key is pending, until the registry gives up (503)
    my $blob = random_bytes(8 * $MiB);
    my $pending0 = rcli('ZCARD', 'objects:pending');
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $A->{port},
        Proto => 'tcp', Timeout => 5) or die "connect: $@\n";
    print $s 'POST /v2/gct/orphan/blobs/uploads/?digest=' . d($blob) . " HTTP/1.1\r\n"
        . "Host: localhost\r\nContent-Type: application/octet-stream\r\n"
        . 'Content-Length: ' . length($blob) . "\r\nConnection: close\r\n\r\n",
        substr($blob, 0, $MiB);
    my $deadline = time + 10;
    sleep 0.01 until rcli('ZCARD', 'objects:pending') > $pending0 || time > $deadline;
    my $tp = time;
    my ($key) = grep { !/^$/ } split /\n/, rcli('ZRANGE', 'objects:pending', -1, -1);
    rcli('CLIENT', 'PAUSE', 5000, 'WRITE');
    print $s substr($blob, $MiB);
    my $answer = do { local $/; <$s> } // '';
    close $s;
    rcli('CLIENT', 'UNPAUSE');
    like $answer, qr{^HTTP/1\.1 503}, 'a streamed push whose commit Redis does not take: 503';
    is head_key($key), 200, "... its object $key is in the bucket";
    is rcli('EXISTS', 'blob:' . d($blob)), 0, '... no blob';
    ok rcli('ZSCORE', 'objects:pending', $key) > 0, '... its key is pending';
    my ($rc, $out) = gc_cmd($A, '--grace=soon');
    isnt $rc, 0, 'scripts/registry gc --grace=soon: refused';
    like $out, qr/invalid duration/, '... an invalid duration';
    # Redis back: the worker reconnects with a backoff
    my $g;
    for (1 .. 40) { $g = gc($E, grace => 10); last if $g->{status} == 200; sleep 0.25 }
    is "$g->{status} $g->{orphans}", '200 0', 'a collection within the grace (10 s) leaves it';
    $g = gc($A, grace => 0);
    is $g->{orphans}, 0, '... so does one with no grace but registry_upload_expires 24h';
    sleep 11 - (time - $tp) if time - $tp < 11;
    $g = gc($E, grace => 10);
    is $g->{orphans}, 1, 'after the grace: 1 orphan';
    is_deeply named($g, 'orphan'), [$key], '... named';
    is head_key($key), 404, '... its object is gone';
    is rcli('ZSCORE', 'objects:pending', $key), '', '... and its key from objects:pending';

    # the unrecorded multipart upload made at the start
    sleep 61 - (time - $lost_made) if time - $lost_made < 61;
    ok scalar(grep { $_ eq "data/$lost_id" } @{ s3_uploads('data/') }),
        'a multipart upload nothing records is in S3';
    $g = gc($A, grace => 0);
    cmp_ok $g->{multipart}, '>=', 1, 'a collection aborts it';
    ok !grep({ $_ eq "data/$lost_id" } @{ s3_uploads('data/') }), '... it is gone from S3';
    $E->stop;
}

# --- 6. the collector on its own, one at a time ----------------------------

{
    $A->stop;
    my @B = map {
        start_nginx(port => $base + 2 + $_, servroot => "$top/t/servroot-gc-b$_", root_location => 0,
            log_level => 'info', http_config => $http,
            config => $Config . gc_location('interval=1s grace=0s'))
    } 0, 1;
    # held by someone else: both collectors wait
    rcli('SET', 'gc:lease', 'held by t/gc.t', 'PX', 4000);
    my $blob = random_bytes(5000);
    my $D = d($blob);
    is push_blob($B[0], 'gct/auto', $blob)->{status}, 201, 'a blob pushed';
    my $key = rcli('HGET', "blob:$D", 'key');
    is $B[0]->request('DELETE', "/v2/gct/auto/blobs/$D")->{status}, 202, '... and deleted';
    sleep 2.5;
    is rcli('EXISTS', "blob:$D") . head_key($key), '1200', 'while the lease is held elsewhere it stays';
    my @refused = map { scalar(() = (read_file("$_->{servroot}/logs/access.log") // '')
        =~ m{"GET /_registry/gc HTTP/1\.0" 429}g) } @B;
    ok $refused[0] && $refused[1], "... both collectors asked and were refused (429: @refused)";
    my $deadline = time + 10;
    sleep 0.2 while rcli('EXISTS', "blob:$D") && time < $deadline;
    is rcli('EXISTS', "blob:$D"), 0, 'once the lease lapsed, a collector took the blob on its own';
    is head_key($key), 404, '... and its object';
    # its answer (and log line) comes after the rest that follows a batch
    my @took;
    $deadline = time + 15;
    do {
        sleep 0.2;
        @took = grep { $B[$_]->error_log =~ /registry: gc: 0 manifests, 1 blobs \(5000 bytes\)/ } 0, 1;
    } until @took || time > $deadline;
    is scalar(@took), 1, "... one of the two nginx (" . ($took[0] // '-') . ')';
    my @bad = grep { /\[(?:alert|crit|emerg)\]/ } map { split /\n/, $_->error_log } @B;
    is scalar(@bad), 0, 'no alert in their logs' or diag join "\n", @bad;
    $_->stop for @B;
}

done_testing;
