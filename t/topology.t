# The production topology: Redis master and replica, three sentinels,
# two nginx (the module asking the sentinels, registry_redis
# sentinel=NAME; the second lists a dead sentinel first), one RGW.
# Pushes (curl: monolithic blobs, then the manifest by tag) and pulls
# alternate between the two nginx while the master is killed (kill -9):
#
#   0. the master made a replica behind the sentinels' back (REPLICAOF):
#      writes get 503 (READONLY, then ROLE), and succeed once it is a
#      master again;
#   1. without registry_redis_wait: writes resume within the sentinels'
#      failover time plus 2 s (the measured times are printed); a watch
#      ends with the old master's subscriber, a new one follows the new
#      master;
#   2. a sentinel killed (the one each worker of the first nginx asks
#      first); the killed Redis back as a replica, registry_redis_wait
#      on: the new master killed too; while no replica can acknowledge, pushes
#      (and deletes) get 503;
#      once one is back they succeed again, and every push that was
#      acknowledged is pullable from both nginx (digests compared);
#   3. a reload while the sentinels are stalled: the new workers push
#      at once, through the master named last.
#
# Everything but the RGW is started here, under t/servroot-topology,
# with a password (Redis, replication and sentinels), and stopped at the
# end by pid.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd ();
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path remove_tree);
use POSIX ();
use Time::HiRes qw(sleep time);
use Registry::Harness qw(start_nginx read_file free_ports nginx_check);
use Registry::Images qw(image watch_open watch_next);

plan skip_all => 'redis-server, redis-sentinel, redis-cli and curl are needed'
    if system('command -v redis-server redis-sentinel redis-cli curl >/dev/null 2>&1') != 0;

my $nport = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 80, 2);
my $rport = free_ports(($ENV{TEST_NGINX_REDIS_PORT} || 16379) + 80, 6);
my $s3port = $ENV{TEST_NGINX_S3_PORT} || 17480;
my $bucket = $ENV{TEST_NGINX_S3_BUCKET} || 'registry-test';
my $root = Cwd::getcwd() . '/t/servroot-topology';

my %redis = (a => $rport, b => $rport + 1);    # a is the first master
my @sentinels = map { $rport + $_ } 2 .. 4;
my $DEAD = $rport + 5;    # held by free_ports, nothing listens
my $MASTER = 'registry';
my $DOWN_AFTER = 1000;
my $PW = 'topology-test-' . sha256_hex("$$ " . time);
$ENV{REDISCLI_AUTH} = $PW;    # redis-cli reads it there, never from argv
my $repo = "topo$$/app";

remove_tree($root);
make_path($root);

# --- Redis and Sentinel, stopped by pid ------------------------------------

my %pid_file;    # name => pid file, of everything started here

sub pid_of {
    my ($name) = @_;
    my $p = read_file($pid_file{$name} // return undef) // return undef;
    chomp $p;
    return undef unless $p =~ /^\d+$/ && kill 0, $p;
    my $comm = read_file("/proc/$p/comm") // '';
    return $comm =~ /^redis/ ? $p : undef;
}

sub cli {
    my ($port, @args) = @_;
    my $q = join ' ', map { "'$_'" } @args;
    my $out = `redis-cli --no-auth-warning -p $port $q 2>&1`;
    chomp $out;
    return $out;
}

sub wait_until {
    my ($secs, $what, $cond) = @_;
    my $deadline = time + $secs;
    until ($cond->()) {
        die "timed out waiting for $what\n" if time > $deadline;
        sleep 0.1;
    }
}

sub start_redis_node {
    my ($name, $replicaof) = @_;
    my $dir = "$root/redis-$name";
    make_path($dir);
    $pid_file{$name} = "$dir/redis.pid";
    open my $fh, '>', "$dir/redis.conf" or die "$dir/redis.conf: $!";
    print $fh <<"EOF";
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
dir $dir
bind 127.0.0.1
port $redis{$name}
save ""
appendonly no
protected-mode no
requirepass $PW
masterauth $PW
EOF
    print $fh "replicaof 127.0.0.1 $redis{$replicaof}\n" if $replicaof;
    close $fh;
    system('redis-server', "$dir/redis.conf") == 0 or die "redis-server $name failed";
    wait_until(5, "redis $name", sub { cli($redis{$name}, 'PING') eq 'PONG' });
}

sub start_sentinel {
    my ($i) = @_;
    my $dir = "$root/sentinel-$i";
    make_path($dir);
    $pid_file{"sentinel$i"} = "$dir/sentinel.pid";
    # Sentinel rewrites its file: it must be its own and writable
    open my $fh, '>', "$dir/sentinel.conf" or die "$dir/sentinel.conf: $!";
    print $fh <<"EOF";
daemonize yes
pidfile $dir/sentinel.pid
logfile $dir/sentinel.log
dir $dir
bind 127.0.0.1
port $sentinels[$i]
protected-mode no
requirepass $PW
sentinel monitor $MASTER 127.0.0.1 $redis{a} 2
sentinel auth-pass $MASTER $PW
sentinel down-after-milliseconds $MASTER $DOWN_AFTER
sentinel failover-timeout $MASTER 5000
sentinel parallel-syncs $MASTER 1
EOF
    close $fh;
    system('redis-sentinel', "$dir/sentinel.conf") == 0 or die "redis-sentinel $i failed";
}

sub stop_all {
    for my $name (sort keys %pid_file) {
        my $p = pid_of($name) // next;
        kill 'TERM', $p;
        my $deadline = time + 5;
        sleep 0.05 while kill(0, $p) && time < $deadline;
        kill 'KILL', $p if kill 0, $p;
    }
}
END { stop_all() }

# what the sentinels say: {ip:port of the master, replicas, other sentinels}
sub sentinel_view {
    my ($port) = @_;
    my @f = split /\n/, cli($port, 'SENTINEL', 'master', $MASTER);
    my %h = @f % 2 ? () : @f;
    return \%h;
}

sub master_port {
    my ($port) = @_;
    my @a = split /\n/, cli($port // $sentinels[0], 'SENTINEL',
        'get-master-addr-by-name', $MASTER);
    return @a == 2 ? $a[1] : 0;
}

sub replica_up {
    my ($name) = @_;
    return cli($redis{$name}, 'INFO', 'replication') =~ /master_link_status:up/;
}

# every sentinel knows the master, its replica (up) and the two others
sub topology_ready {
    my ($master) = @_;
    for my $s (@sentinels) {
        my $v = sentinel_view($s);
        return 0 unless ($v->{port} // 0) == $master
            && ($v->{'num-other-sentinels'} // 0) == 2
            && ($v->{flags} // '') eq 'master'
            && cli($s, 'SENTINEL', 'replicas', $MASTER) =~ /^flags\nslave$/m;
    }
    return 1;
}

# --- nginx -----------------------------------------------------------------

sub conf {
    my ($wait, $dead_first) = @_;
    my $s = join ' ', map { "127.0.0.1:$_" } ($dead_first ? $DEAD : ()), @sentinels;
    return (
        http_config => <<"EOF" . ($wait ? "    registry_redis_wait 1 1s;\n" : ''),
    registry_redis sentinel=$MASTER $s;
    registry_redis_password $PW;
    registry_redis_timeout 2s;
    registry_s3_endpoint http://127.0.0.1:$s3port;
    registry_s3_bucket $bucket;
    registry_s3_location /_registry_s3/;
EOF
        config => <<"EOF",
        location /v2/ {
            registry;
        }

        location /apis/ {
            registry;
        }

        location /_registry_s3/ {
            internal;
            proxy_pass http://127.0.0.1:$s3port/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
EOF
    );
}

# --- pushes and pulls with curl ---------------------------------------------

my $TMP = "$root/tmp";
make_path($TMP);

# one HTTP request: (status, body, Docker-Content-Digest)
sub curl {
    my ($port, $method, $path, $body, $type) = @_;
    my @args = ('-s', '-m', '10', '-X', $method, '-D', "$TMP/h", '-o', "$TMP/b",
        '-w', '%{http_code}');
    if (defined $body) {
        open my $fh, '>:raw', "$TMP/in" or die $!;
        print $fh $body;
        close $fh;
        push @args, '--data-binary', "\@$TMP/in", '-H', "Content-Type: $type";
    }
    unlink "$TMP/h", "$TMP/b";
    open my $c, '-|', 'curl', @args, "http://127.0.0.1:$port$path" or die "curl: $!";
    my $code = <$c> // '000';
    close $c;
    my $h = read_file("$TMP/h") // '';
    my ($digest) = $h =~ /^Docker-Content-Digest:\s*(\S+)/mi;
    return ($code, read_file("$TMP/b") // '', $digest);
}

my $seq = 0;

# a new image pushed by tag: its blobs monolithic, then the manifest;
# returns {tag, image, status (of the first request that failed, or of
# the manifest PUT), at (when it ended)}
sub push_one {
    my ($port) = @_;
    my $tag = 't' . ++$seq;
    my $img = image(type => 'oci', layers => 1);
    my %p = (tag => $tag, image => $img, port => $port);
    for my $blob ($img->{config}, @{ $img->{layers} }) {
        my $d = 'sha256:' . sha256_hex($blob);
        my ($code, $body) = curl($port, 'POST', "/v2/$repo/blobs/uploads/?digest=$d",
            $blob, 'application/octet-stream');
        if ($code ne '201') {
            @p{qw(status body at)} = ($code, $body, time);
            return \%p;
        }
    }
    my ($code, $body, $digest) = curl($port, 'PUT', "/v2/$repo/manifests/$tag",
        $img->{manifest}, $img->{type});
    @p{qw(status body at)} = ($code, $body, time);
    $p{ack} = $code eq '201' && ($digest // '') eq $img->{digest};
    return \%p;
}

# the pushed image read back: manifest by tag (digest and bytes), its blobs
sub pulled {
    my ($port, $p) = @_;
    my ($code, $body, $digest) = curl($port, 'GET', "/v2/$repo/manifests/$p->{tag}");
    return "manifest $code" unless $code eq '200';
    return "manifest digest $digest" unless ($digest // '') eq $p->{image}{digest}
        && 'sha256:' . sha256_hex($body) eq $p->{image}{digest};
    for my $blob ($p->{image}{config}, @{ $p->{image}{layers} }) {
        my $d = 'sha256:' . sha256_hex($blob);
        ($code, $body) = curl($port, 'GET', "/v2/$repo/blobs/$d");
        return "blob $code" unless $code eq '200';
        return "blob $d: other bytes" unless 'sha256:' . sha256_hex($body) eq $d;
    }
    return 'ok';
}

# a child that asks a sentinel every 20 ms and writes when the master
# left $from: the failover as the sentinels see it, timed apart from the
# pushes
sub watch_failover {
    my ($from, $file) = @_;
    unlink $file;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    my $deadline = time + 60;
    while (time < $deadline) {
        for my $s (@sentinels) {
            my $m = master_port($s);
            if ($m && $m != $from) {
                open my $fh, '>', "$file.new" or POSIX::_exit(1);
                printf $fh "%.3f %d\n", time, $m;
                close $fh;
                rename "$file.new", $file;
                POSIX::_exit(0);
            }
        }
        sleep 0.02;
    }
    POSIX::_exit(1);
}

my @watchers;
END { kill 'KILL', @watchers if @watchers }

sub failover_at {
    my ($file) = @_;
    my $line = read_file($file) // return undef;
    return [split ' ', $line];
}

# =============================================================================

# bad directives fail `nginx -t`, saying why
my %bad = (
    'registry_redis sentinel=registry;' => qr/needs at least one sentinel address/,
    'registry_redis sentinel=registry unix:/tmp/s.sock;' => qr/sentinels by IP address/,
    'registry_redis sentinel=registry sentinel.example.com:26379;' => qr/must be an IP address/,
    'registry_redis 127.0.0.1:6379 127.0.0.1:6380;' => qr/takes one address/,
    'registry_redis_wait 1 2s;' => qr/shorter than "registry_redis_timeout"/,
    'registry_redis_wait 1 0;' => qr/timeout over 0/,
);
for my $line (sort keys %bad) {
    my %c = conf(0);
    $c{http_config} =~ s/^\s*registry_redis sentinel=.*\n//m unless $line =~ /_wait/;
    my ($rc, $out) = nginx_check(port => $nport, servroot => "$root/conf-check",
        root_location => 0, %c, http_config => "$c{http_config}    $line\n");
    isnt $rc, 0, "nginx -t refuses: $line";
    like $out, $bad{$line}, '... saying why';
}

start_redis_node('a');
start_redis_node('b', 'a');
wait_until(10, 'replication a -> b', sub { replica_up('b') });
start_sentinel($_) for 0 .. 2;
# the sentinels find the replica and each other through the master
wait_until(30, 'the sentinels to see the topology', sub { topology_ready($redis{a}) });
pass 'master, replica and three sentinels up';

my @ngx = map {
    start_nginx(port => $nport + $_, servroot => "$root/nginx-$_", root_location => 0,
        workers => 2, log_level => 'notice', conf(0, $_))
} 0, 1;

# both answer pushes (each worker has asked a sentinel)
wait_until(10, 'the registries to push', sub {
    my $ok = 1;
    $ok &&= push_one($_->{port})->{ack} for @ngx;
    $ok;
});
pass 'both nginx push through the master the sentinels name';

like $ngx[1]->error_log, qr/sentinel 127\.0\.0\.1:$DEAD connect failed/,
    'a dead sentinel: the next one is asked';

# --- 0. the master turned replica: READONLY, ROLE ----------------------------

my $first = push_one($ngx[0]{port});
my @from = map { length $_->error_log(0) } @ngx;
is cli($redis{a}, 'REPLICAOF', '127.0.0.1', $DEAD), 'OK', 'the master made a replica';
my @ro = map { push_one($ngx[$_ % 2]{port}) } 1 .. 6;
is scalar(grep { $_->{status} eq '503' && $_->{body} =~ /"code":"UNAVAILABLE"/ } @ro), 6,
    'pushes to a master turned replica: 503 UNAVAILABLE'
    or diag explain [map { "$_->{status} $_->{body}" } @ro];
# the workers reconnect meanwhile, and ROLE refuses the replica: reads
# are refused too, and the connection is never "restored"
sleep 1;
is pulled($_->{port}, $first), 'manifest 503', "nginx $_->{port}: pulls from a replica: 503"
    for @ngx;
my $since = join '', map { $ngx[$_]->error_log($from[$_]) } 0, 1;
like $since, qr/is a replica now \(READONLY\)/, 'READONLY drops the connection';
unlike $since, qr/connection restored/, '... which is not restored to a replica';
is cli($redis{a}, 'REPLICAOF', 'NO', 'ONE'), 'OK', 'a master again';
my $t0 = time;
wait_until(8, 'pushes to the master again', sub {
    my $ok = 1;
    $ok &&= push_one($_->{port})->{ack} for @ngx;
    $ok;
});
diag sprintf 'pushes resumed %.2f s after REPLICAOF NO ONE', time - $t0;
wait_until(10, 'replication a -> b', sub { replica_up('b') });

# --- 1. kill -9 of the master, no durability --------------------------------

# a watch on A, served by the subscriber to the old master
my $w1 = watch_open($ngx[0]{port},
    "/apis/image.openshift.io/v1/namespaces/topo$$/imagestreams?watch=true");
is((watch_next($w1, 5) // {})->{type}, 'ADDED', 'a watch before the failover');

my (@acked, @log);
my $i = 0;
my $round = sub {
    my $n = $ngx[$i++ % 2];
    my $other = $ngx[$i % 2];
    my $p = push_one($n->{port});
    push @acked, $p if $p->{ack};
    push @log, $p;
    # a pull of an earlier push on the other nginx: when it answers, it
    # answers the right bytes
    if (@acked) {
        my $prev = $acked[-1];
        my $r = pulled($other->{port}, $prev);
        $p->{pull} = $r;
    }
    return $p;
};

$round->() for 1 .. 6;
is scalar(grep { $_->{ack} } @log), 6, 'pushes before the failover: all acknowledged'
    or diag explain [map { "$_->{status} $_->{body}" } @log];

my $file = "$root/failover-1";
push @watchers, watch_failover($redis{a}, $file);
my $killed = pid_of('a') or die 'no master pid';
my $t_kill = time;
kill 'KILL', $killed;
@log = ();

# until a push succeeds after one failed, at most 30 s
my ($t_fail, $t_resume);
while (time < $t_kill + 30) {
    my $p = $round->();
    if (!$p->{ack}) {
        $t_fail //= $p->{at};
    } elsif ($t_fail) {
        $t_resume = $p->{at};
        last;
    }
}
my $sw = failover_at($file);
ok $t_fail, 'pushes failed while the master was gone';
ok $sw, 'the sentinels promoted the replica' or BAIL_OUT('no failover');
is $sw->[1], $redis{b}, 'the new master is the replica';
ok $t_resume, 'pushes succeed again';
my %status;
$status{ $_->{status} }++ for grep { !$_->{ack} } @log;
is_deeply [sort keys %status], ['503'], 'failed pushes got 503 and nothing else'
    or diag explain \%status;
is scalar(grep { !$_->{ack} && $_->{body} !~ /"code":"UNAVAILABLE"/ } @log), 0,
    '... with UNAVAILABLE';

my $failover = $sw->[0] - $t_kill;
my $resume = $t_resume - $t_kill;
diag sprintf 'failover 1: sentinels switched %.2f s after the kill '
    . '(down-after-milliseconds %d), pushes resumed after %.2f s (%.2f s after the switch)',
    $failover, $DOWN_AFTER, $resume, $resume - $failover;
cmp_ok $resume, '<=', $failover + 2, 'writes resume within the failover time plus 2 s';

# reads on the other nginx never returned wrong bytes (without WAIT, a
# push acknowledged just before the kill may be lost: 404)
my @bad = grep { ($_->{pull} // 'ok') !~ /^(ok|manifest (503|404)|blob 503)$/ } @log;
is scalar(@bad), 0, 'pulls during the failover: the right bytes, 503 or 404'
    or diag explain [map { $_->{pull} } @bad];

# both nginx, every worker, follow the new master
for my $n (@ngx) {
    my $ok = 0;
    $ok += push_one($n->{port})->{ack} for 1 .. 4;
    is $ok, 4, "nginx $n->{port}: pushes after the failover";
}
my $lost = grep { pulled($ngx[0]{port}, $_) ne 'ok' } @acked;
diag "without registry_redis_wait: $lost of " . scalar(@acked)
    . ' acknowledged pushes lost in the failover';

like $ngx[0]->error_log . $ngx[1]->error_log,
    qr/registry redis "$MASTER": master 127\.0\.0\.1:$redis{b} after a failover/,
    'the switch is logged';

# the watch ended with the old master; a new one follows the new master
my $end = time + 10;
watch_next($w1, 1) while !$w1->{ended} && time < $end;
ok $w1->{ended}, 'the watch on the old master ended';
my $w2 = watch_open($ngx[0]{port},
    "/apis/image.openshift.io/v1/namespaces/topo$$/imagestreams?watch=true");
is((watch_next($w2, 5) // {})->{type}, 'ADDED', 'a watch after the failover');
my $p = push_one($ngx[1]{port});
my $ev = watch_next($w2, 5) // {};
is $ev->{type}, 'MODIFIED', 'it sees a push on the other nginx';
ok((grep { $_->{tag} eq $p->{tag} } @{ $ev->{object}{status}{tags} || [] }),
    '... the tag pushed');
close $_->{sock} for $w1, $w2;

# --- 2. durability on, the new master killed ---------------------------------

# the killed Redis comes back as a replica of the new master
start_redis_node('a', 'b');
wait_until(20, 'replication b -> a', sub { replica_up('a') });
wait_until(30, 'the sentinels to see a as a replica', sub { topology_ready($redis{b}) });

# the sentinel each worker of A asks first dies: the workers go on with
# the others
kill 'KILL', pid_of('sentinel0');
wait_until(10, 'nginx to leave the dead sentinel', sub {
    $ngx[0]->error_log =~ /sentinel 127\.0\.0\.1:$sentinels[0] connection lost/
});
pass 'a lost sentinel is noticed';

$_->reload(conf(1)) for @ngx;
@acked = ();
@log = ();
wait_until(10, 'pushes with registry_redis_wait', sub { $round->()->{ack} });
$round->() for 1 .. 6;
ok @acked >= 6, 'pushes acknowledged by a replica (WAIT)';

$file = "$root/failover-2";
push @watchers, watch_failover($redis{b}, $file);
$killed = pid_of('b') or die 'no master pid';
$t_kill = time;
kill 'KILL', $killed;
@log = ();

# until the sentinels promoted a, and a few pushes more: no replica
# can acknowledge them
wait_until(30, 'the second failover', sub { $round->(); failover_at($file) });
my $switched = time;
$round->() for 1 .. 3;
my @alone = grep { $_->{at} > $switched } @log;
is scalar(grep { $_->{ack} } @alone), 0,
    'no replica: no push acknowledged (' . scalar(@alone) . ' tried)';
is scalar(grep { $_->{status} eq '503' && $_->{body} =~ /"code":"UNAVAILABLE"/ } @alone),
    scalar(@alone), '... each got 503 UNAVAILABLE';
# a delete is a write too: not acknowledged without a replica (it may
# have happened on the master: that image is no longer checked below)
my $undone = shift @acked;
my ($dcode, $dbody) = curl($ngx[0]{port}, 'DELETE', "/v2/$repo/manifests/$undone->{tag}");
is $dcode . ($dbody =~ /"code":"UNAVAILABLE"/ ? ' UNAVAILABLE' : " $dbody"), '503 UNAVAILABLE',
    'no replica: a tag DELETE gets 503 UNAVAILABLE';
$sw = failover_at($file);
is $sw->[1], $redis{a}, 'the new master is the replica';
diag sprintf 'failover 2: sentinels switched %.2f s after the kill', $sw->[0] - $t_kill;
@bad = grep { ($_->{pull} // 'ok') !~ /^(ok|manifest 503|blob 503)$/ } @log;
is scalar(@bad), 0, 'pulls during the failover: the right bytes or 503, never 404'
    or diag explain [map { $_->{pull} } @bad];

# b back as a replica: pushes are acknowledged again
start_redis_node('b', 'a');
wait_until(20, 'replication a -> b', sub { replica_up('b') });
my $n_before = @acked;
wait_until(15, 'pushes acknowledged again', sub { $round->()->{ack} });
$round->() for 1 .. 4;
ok @acked > $n_before + 3, 'with a replica back, pushes are acknowledged again';

# every acknowledged push of this part, from both nginx
for my $n (@ngx) {
    my @missing = grep { pulled($n->{port}, $_) ne 'ok' } @acked;
    is scalar(@missing), 0, "nginx $n->{port}: all " . scalar(@acked)
        . ' acknowledged pushes pullable, digests equal'
        or diag explain [map { "$_->{tag}: " . pulled($n->{port}, $_) } @missing];
}

# --- 3. workers started while no sentinel answers -----------------------------

# A reload (or a respawn) while the sentinels are stalled (SIGSTOP): the
# new workers go to the master named last (kept in shared memory) at
# once, instead of answering 503 until a sentinel does.  Last in this
# file: stalled for a second or more, a sentinel may go into TILT mode
# and sit out failovers for 30 s.
my @stalled = grep { defined } map { pid_of("sentinel$_") } 0 .. 2;
my $from = $ngx[0]->log_size;
kill 'STOP', @stalled;
$ngx[0]->reload(conf(1));
my $reloaded = push_one($ngx[0]{port});
kill 'CONT', @stalled;
ok $reloaded->{ack}, 'a reload while no sentinel answers: the new workers push at once'
    or diag "$reloaded->{status} $reloaded->{body}";
like join("\n", $ngx[0]->log_lines($from)), qr/master 127\.0\.0\.1:$redis{a} as named last/,
    '... through the master named last';

unlike $ngx[0]->error_log . $ngx[1]->error_log, qr/\[(alert|crit|emerg)\]/,
    'no alert in the error logs';

$_->stop for @ngx;
done_testing;
