# Metrics (ngx_http_registry_metrics.c) and health: the Prometheus text
# of registry_metrics passes `promtool check metrics`; counters move by
# exactly what a known sequence of pushes, pulls and uploads does; two
# workers' counts are one instance's answer, whichever worker is asked;
# a real prometheus scrapes it and answers queries about it; the README's
# alert rules pass `promtool check rules` and name series that exist;
# /readyz goes 503 while Redis is stopped (SIGSTOP, then killed) and back
# to 200 after, while /livez stays 200.
#
# Instance A: two workers, authorization off, a second server on another
# port with `reuseport` (the kernel spreads its connections over both
# workers), a webhook.  Instance B: the Redis-backed authorizer and a
# small decision cache.  Both use a Redis of their own (stopped here).
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use File::Path qw(make_path remove_tree);
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time sleep);
use Registry::Harness qw(start_nginx http_request read_file free_ports
    start_redis);
use Registry::Auth qw(admin remember_tokens);
use Registry::Blobs qw(d random_bytes);
use Registry::Images qw(image push_image watch_open watch_status hook_server);

plan skip_all => 'promtool and prometheus are needed (apt-get install prometheus)'
    if system('command -v promtool prometheus >/dev/null 2>&1') != 0;

# A, A's reuseport server, B, prometheus, the webhook receiver
my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 160, 5);
my ($PORT_SPREAD, $PORT_B, $PORT_PROM, $PORT_HOOK) = map { $port + $_ } 1 .. 4;
my $redis = start_redis(port => free_ports(($ENV{TEST_NGINX_REDIS_PORT} || 16379) + 90, 1));
$ENV{TEST_NGINX_REDIS_PORT} = $redis->{port};
my $root = getcwd() . '/t/servroot-metrics';
make_path($root);

my $hook_file = "$root/hook.jsonl";
unlink $hook_file;
my @pids = (hook_server($PORT_HOOK, $hook_file));
END { kill 'TERM', @pids if @pids }

my $metrics_location = <<'EOF';
    location = /metrics {
        registry_metrics;
        allow 127.0.0.1;
        deny all;
    }
    location = /healthz { registry_health; }
    location = /readyz { registry_health ready; }
    location = /livez { registry_health live; }
EOF

my $na = start_nginx(port => $port, servroot => "$root/a", root_location => 0,
    workers => 2,
    http_config => $Registry::Blobs::HttpConfig . <<"EOF",
    registry_redis_timeout 1s;
    registry_event_webhook /_hook;
    log_format metrics_pid '\$pid \$request';

    server {
        listen 127.0.0.1:$PORT_SPREAD reuseport;
        access_log $root/a/spread.log metrics_pid;
        location / { registry; }
        location = /metrics { registry_metrics; }
    }
EOF
    config => $Registry::Blobs::Config . $metrics_location . <<"EOF");
    location = /_hook {
        internal;
        proxy_pass http://127.0.0.1:$PORT_HOOK/events;
    }
EOF

# --- the exposition ---------------------------------------------------

# {series => value}: the series as written, labels in their order
sub scrape {
    my ($ngx, $port) = @_;
    my $r = $ngx eq 'http'
        ? http_request(port => $port, method => 'GET', path => '/metrics')
        : $ngx->request('GET', '/metrics');
    die "GET /metrics: $r->{status} " . ($r->{error} // '') . "\n" unless $r->{status} eq '200';
    my %m;
    for (split /\n/, $r->{body}) {
        next if /^#/;
        /^(\S+) (\S+)$/ or die "bad line: $_\n";
        $m{$1} = $2;
    }
    return \%m unless wantarray;
    return (\%m, $r);
}
sub v { $_[0]{ $_[1] } // 0 }
sub delta {
    my ($before, $after, @series) = @_;
    my %d;
    $d{$_} = v($after, $_) - v($before, $_) for @series;
    return \%d;
}
# a scrape once the counts reach what is wanted, within 3 s: a request is
# counted in its log phase, which may run after its answer reached us
sub settled {
    my ($ngx, $before, $want) = @_;
    my ($m, $deadline) = (undef, time + 3);
    while (1) {
        $m = scrape($ngx);
        my $d = delta($before, $m, keys %$want);
        last if time > $deadline || !grep { $d->{$_} != $want->{$_} } keys %$want;
        sleep 0.1;
    }
    return $m;
}
sub req { 'registry_http_requests_total{route="' . $_[0] . '",method="' . $_[1]
    . '",status_class="' . $_[2] . '"}' }
sub s3 { 'registry_s3_requests_total{operation="' . $_[0] . '",outcome="' . ($_[1] // 'ok') . '"}' }

my ($m0, $res) = scrape($na);
like $res->{headers}{'content-type'}, qr{^text/plain; version=0\.0\.4}, 'text exposition format';

sub promtool_metrics {
    my ($text) = @_;
    my $f = "$root/scrape.txt";
    open my $fh, '>', $f or die $!;
    print $fh $text;
    close $fh;
    my $out = `promtool check metrics < '$f' 2>&1`;
    return ($? == 0, $out);
}
my ($ok, $out) = promtool_metrics($res->{body});
ok $ok, 'promtool check metrics: no problem' or diag $out;

for my $name (qw(registry_http_requests_total registry_http_request_duration_seconds
    registry_blob_received_bytes_total registry_blob_sent_bytes_total
    registry_manifest_pushes_total registry_manifest_pulls_total
    registry_upload_sessions_started_total registry_upload_sessions_committed_total
    registry_upload_sessions_cancelled_total registry_upload_sessions_expired_total
    registry_upload_sessions_open registry_s3_requests_total
    registry_s3_request_duration_seconds registry_redis_commands_total
    registry_redis_errors_total registry_redis_connection_losses_total
    registry_redis_reconnects_total registry_redis_command_duration_seconds
    registry_auth_decisions_total registry_auth_cache_hits_total
    registry_auth_cache_misses_total registry_auth_cache_evictions_total
    registry_events_total registry_webhook_deliveries_total
    registry_webhook_retries_total registry_webhook_drops_total
    registry_gc_runs_total registry_gc_reclaimed_bytes_total
    registry_gc_blobs_deleted_total registry_watches_active))
{
    like $res->{body}, qr/^# TYPE \Q$name\E (counter|gauge|histogram)$/m, "$name is exported";
}
unlike $res->{body}, qr/repo|project|user=|name=/, 'no label names a repository or a user';

# --- a known sequence -------------------------------------------------

my $R = 'metrics/app';
my $img = image(layers => 2);
my @blobs = ($img->{config}, @{ $img->{layers} });
my $pushed = 0;
$pushed += length for @blobs;

my $r = push_image($na, $R, 'v1', $img);
is $r->{status}, 201, 'an image pushed: three monolithic blobs and a manifest';

# a session: POST, PATCH, PUT ?digest=
my $chunked = random_bytes(70000);
$r = $na->request('POST', "/v2/$R/blobs/uploads/");
is $r->{status}, 202, 'a session started';
my $loc = $r->{headers}{location};
$r = $na->request('PATCH', $loc, body => substr($chunked, 0, 30000),
    headers => [['Content-Type', 'application/octet-stream'], ['Content-Range', '0-29999']]);
is $r->{status}, 202, '... a chunk';
$loc = $r->{headers}{location};
$r = $na->request('PUT', "$loc?digest=" . d($chunked), body => substr($chunked, 30000),
    headers => [['Content-Type', 'application/octet-stream']]);
is $r->{status}, 201, '... committed with the rest';

# a session cancelled, one left open
$r = $na->request('POST', "/v2/$R/blobs/uploads/");
my $gone = $r->{headers}{location};
$r = $na->request('DELETE', $gone);
is $r->{status}, 204, 'a session cancelled';
$r = $na->request('DELETE', $gone);
is $r->{status}, 404, '... deleting it again counts nothing';
$r = $na->request('POST', "/v2/$R/blobs/uploads/");
is $r->{status}, 202, 'a session left open';

# pulls
my $accept = ['Accept', $img->{type}];
for (1, 2) {
    $r = $na->request('GET', "/v2/$R/manifests/v1", headers => [$accept]);
    is $r->{status}, 200, "manifest GET $_";
}
$r = $na->request('HEAD', "/v2/$R/manifests/v1", headers => [$accept]);
is $r->{status}, 200, 'manifest HEAD: no pull';
$r = $na->request('GET', "/v2/$R/manifests/nosuchtag", headers => [$accept]);
is $r->{status}, 404, 'unknown manifest: 404';
my $layer = $img->{layers}[0];
for (1, 2) {
    $r = $na->request('GET', "/v2/$R/blobs/" . d($layer));
    is $r->{status}, 200, "blob GET $_";
    is $r->{body}, $layer, '... its bytes';
}
$r = $na->request('GET', "/v2/$R/blobs/" . d($layer), headers => [['Range', 'bytes=0-9']]);
is $r->{status}, 206, 'a blob range';

# two blob GETs on one keep-alive connection: each counts its own bytes
{
    my $get = "GET /v2/$R/blobs/" . d($chunked) . " HTTP/1.1\r\nHost: localhost\r\n";
    my $raw = Registry::Blobs::pipelined($port, $get . "\r\n" . $get . "Connection: close\r\n\r\n");
    my $n = () = $raw =~ m{HTTP/1\.1 200 OK\r\n}g;
    is $n, 2, 'two blob GETs on one connection';
}

my %want = (
    req('upload', 'POST', '2xx') => 3 + 3,         # 3 monolithic, 3 sessions
    req('upload', 'PATCH', '2xx') => 1,
    req('upload', 'PUT', '2xx') => 1,
    req('upload', 'DELETE', '2xx') => 1,
    req('upload', 'DELETE', '4xx') => 1,
    req('manifest', 'PUT', '2xx') => 1,
    req('manifest', 'GET', '2xx') => 2,
    req('manifest', 'HEAD', '2xx') => 1,
    req('manifest', 'GET', '4xx') => 1,
    req('blob', 'GET', '2xx') => 5,
    'registry_http_request_duration_seconds_count{route="blob",method="GET"}' => 5,
    'registry_http_request_duration_seconds_bucket{route="blob",method="GET",le="+Inf"}' => 5,
    registry_manifest_pushes_total => 1,
    registry_manifest_pulls_total => 2,
    registry_blob_received_bytes_total => $pushed + length $chunked,
    registry_blob_sent_bytes_total => 2 * length($layer) + 10 + 2 * length($chunked),
    registry_upload_sessions_started_total => 3,
    registry_upload_sessions_committed_total => 1,
    registry_upload_sessions_cancelled_total => 1,
    registry_upload_sessions_open => 1,
    'registry_events_total{action="push"}' => 5,    # 4 blobs, 1 manifest
    # the monolithic blobs and the session's (one PutObject: under 5 MiB)
    s3('put_object') => 4,
    # 2 + 1 range + 2 pipelined blob GETs, and the config read at the push
    s3('get_object') => 6,
);
my $m1 = settled($na, $m0, \%want);
my $d = delta($m0, $m1, keys %want);
is $d->{$_}, $want{$_}, "$_ moved by $want{$_}" for sort keys %want;
cmp_ok v($m1, 'registry_redis_commands_total') - v($m0, 'registry_redis_commands_total'), '>=', 10,
    'Redis commands counted';
is v($m1, 'registry_redis_command_duration_seconds_count')
    - v($m0, 'registry_redis_command_duration_seconds_count'),
   v($m1, 'registry_redis_commands_total') - v($m0, 'registry_redis_commands_total'),
   '... each answered one timed';

# the webhook got the five events
my $deadline = time + 10;
sleep 0.1 while v(scalar scrape($na), 'registry_webhook_deliveries_total') < 5 && time < $deadline;
is v(scalar scrape($na), 'registry_webhook_deliveries_total'), 5, 'five webhook deliveries';

# histograms: cumulative buckets, +Inf is the count
{
    my %h;
    for my $k (keys %$m1) {
        next unless $k =~ /^(\w+)_bucket\{(.*?),?le="([^"]+)"\}$/;
        push @{ $h{"$1\{$2\}"} }, [$3 eq '+Inf' ? 9**9**9 : $3, $m1->{$k}];
    }
    my $bad = 0;
    for my $c (keys %h) {
        my @b = sort { $a->[0] <=> $b->[0] } @{ $h{$c} };
        for my $i (1 .. $#b) { $bad++ if $b[$i][1] < $b[$i - 1][1] }
        (my $count = $c) =~ s/^(\w+)\{/${1}_count{/;
        $count =~ s/\{\}$//;
        $bad++ if $b[-1][1] != v($m1, $count);
    }
    ok scalar(keys %h) > 5, scalar(keys %h) . ' histograms seen';
    is $bad, 0, '... each cumulative, +Inf equal to _count';
}

# --- a watch ----------------------------------------------------------

my $w = watch_open($port, '/apis/image.openshift.io/v1/namespaces/metrics/imagestreams?watch=true');
is watch_status($w), 200, 'a watch';
$deadline = time + 5;
sleep 0.05 while v(scalar scrape($na), 'registry_watches_active') != 1 && time < $deadline;
is v(scalar scrape($na), 'registry_watches_active'), 1, '... registry_watches_active 1';
close $w->{sock};
$deadline = time + 5;
sleep 0.05 while v(scalar scrape($na), 'registry_watches_active') != 0 && time < $deadline;
my $m2 = scrape($na);
is v($m2, 'registry_watches_active'), 0, '... 0 once the client left';
is v($m2, req('watch', 'GET', '2xx')) + v($m2, req('watch', 'GET', '4xx')), 1,
    '... one request of route "watch"';

# a worker killed with its watch: the gauge forgets it (its respawned
# successor clears the row)
sub workers { map { chomp; $_ } `pgrep -P $na->{pid}` }
$w = watch_open($port, '/apis/image.openshift.io/v1/namespaces/metrics/imagestreams?watch=true');
is watch_status($w), 200, 'another watch';
$deadline = time + 5;
sleep 0.05 while v(scalar scrape($na), 'registry_watches_active') != 1 && time < $deadline;
is v(scalar scrape($na), 'registry_watches_active'), 1, '... registry_watches_active 1';
{
    my @old = workers();
    kill 'KILL', @old;
    my %old = map { $_ => 1 } @old;
    my @new;
    $deadline = time + 10;
    while (time < $deadline) {
        @new = grep { !$old{$_} } workers();
        last if @new == 2;
        sleep 0.05;
    }
    is scalar(@new), 2, 'both workers killed (-9) and respawned';
}
# a successor clears its slot as it starts, which may be after its pid
# shows (slower under the sanitizers)
$deadline = time + 5;
sleep 0.05 while v(scalar scrape($na), 'registry_watches_active') != 0 && time < $deadline;
is v(scalar scrape($na), 'registry_watches_active'), 0, '... registry_watches_active 0';
close $w->{sock};

# --- two workers, one answer -------------------------------------------

{
    # four clients at once, scraped meanwhile: the workers add together
    my ($clients, $each) = (4, 50);
    my $n = $clients * $each;
    my $before = scrape($na);
    truncate "$root/a/spread.log", 0;
    my @kids;
    for (1 .. $clients) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $bad = 0;
            for (1 .. $each) {
                my $x = http_request(port => $PORT_SPREAD, method => 'GET', path => '/v2/');
                $bad++ unless $x->{status} eq '200';
            }
            POSIX::_exit($bad ? 1 : 0);
        }
        push @kids, $pid;
    }
    my ($scrapes, $backwards, $last, $over) = (0, 0, 0, 0);
    while (1) {
        my $got = v(scalar scrape(http => $PORT_SPREAD), req('base', 'GET', '2xx'))
            - v($before, req('base', 'GET', '2xx'));
        $scrapes++;
        $backwards++ if $got < $last;
        $over++ if $got > $n;
        $last = $got;
        last if $got >= $n || $scrapes > 2000;
    }
    my $failed = 0;
    for (@kids) { waitpid $_, 0; $failed++ if $? }
    is $failed, 0, "$clients clients sent $each requests each, all 200";
    is $backwards + $over, 0, "$scrapes scrapes meanwhile: the count never went back nor over $n";
    # the access log is buffered per worker: wait for every line
    $deadline = time + 5;
    my %pids;
    while (time < $deadline) {
        %pids = ();
        $pids{$_}++ for (read_file("$root/a/spread.log") // '') =~ m{^(\d+) GET /v2/ }mg;
        my $lines = 0;
        $lines += $_ for values %pids;
        last if $lines >= $n;
        sleep 0.1;
    }
    cmp_ok scalar(keys %pids), '>=', 2, 'the requests went to ' . scalar(keys %pids) . ' workers ('
        . join(', ', map { "$pids{$_}" } sort keys %pids) . ')';
    my %seen;
    truncate "$root/a/spread.log", 0;
    for (1 .. 20) {
        my $after = scrape(http => $PORT_SPREAD);
        $seen{ v($after, req('base', 'GET', '2xx')) - v($before, req('base', 'GET', '2xx')) }++;
    }
    is_deeply [keys %seen], [$n], "twenty scrapes all count $n";
    %pids = ();
    $deadline = time + 5;
    while (time < $deadline) {
        my $log = read_file("$root/a/spread.log") // '';
        %pids = ();
        $pids{$_}++ for $log =~ m{^(\d+) GET /metrics}mg;
        my $lines = 0;
        $lines += $_ for values %pids;
        last if $lines >= 20;
        sleep 0.1;
    }
    cmp_ok scalar(keys %pids), '>=', 2, '... answered by ' . scalar(keys %pids) . ' workers';
}

# --- authorization ----------------------------------------------------

admin({ quiet => 1 }, 'user', 'delete', 'metricsuser');
my $token = admin('user', 'add', 'metricsuser');
remember_tokens($token);
admin({ quiet => 1 }, 'project', 'delete', 'mproj');
admin('project', 'add', 'mproj');
admin('policy', 'add-role-to-user', 'registry-viewer', 'metricsuser', '-n', 'mproj');

my $nb = start_nginx(port => $PORT_B, servroot => "$root/b", root_location => 0,
    http_config => $Registry::Blobs::HttpConfig . <<'EOF',
    registry_auth /_registry_auth;
    registry_auth_cache zone=metrics_auth:32k valid=60s;
EOF
    config => $Registry::Blobs::Config . $metrics_location . <<'EOF');
    location = /_registry_auth {
        internal;
        registry_authorizer;
    }
EOF
{
    my $bearer = ['Authorization', "Bearer $token"];
    my $before = scrape($nb);
    is $nb->request('GET', '/v2/')->{status}, 401, 'anonymous: 401';
    is $nb->request('GET', '/v2/')->{status}, 401, '... again (cached)';
    is $nb->request('GET', '/v2/', headers => [$bearer])->{status}, 200, 'a token: 200';
    is $nb->request('GET', '/v2/mproj/x/tags/list', headers => [$bearer])->{status}, 404,
        'pull allowed (no such repository)';
    is $nb->request('DELETE', '/v2/mproj/x/manifests/latest', headers => [$bearer])->{status}, 403,
        'delete denied';
    my %want = (
        'registry_auth_decisions_total{outcome="unauthorized"}' => 2,
        'registry_auth_decisions_total{outcome="allowed"}' => 2,
        'registry_auth_decisions_total{outcome="denied"}' => 1,
        registry_auth_cache_misses_total => 4,
        registry_auth_cache_hits_total => 1,
        registry_auth_cache_evictions_total => 0,
        req('base', 'GET', '4xx') => 2,
        req('manifest', 'DELETE', '4xx') => 1,
    );
    my $after = settled($nb, $before, \%want);
    my $d = delta($before, $after, keys %want);
    is $d->{$_}, $want{$_}, "$_ moved by $want{$_}" for sort keys %want;

    # a full cache: 400 decisions for 32k
    for my $i (1 .. 400) {
        $nb->request('GET', "/v2/mproj/r$i/tags/list", headers => [$bearer]);
    }
    my $full = scrape($nb);
    cmp_ok v($full, 'registry_auth_cache_evictions_total'), '>', 0,
        'a full cache evicts: ' . v($full, 'registry_auth_cache_evictions_total');
}

# --- a reload keeps the counts ---------------------------------------

{
    my $before = scrape($na);
    my @old = workers();
    $na->reload;
    my $deadline = time + 10;
    my @new;
    while (time < $deadline) {
        @new = workers();
        my %old = map { $_ => 1 } @old;
        last if @new == 2 && !grep { $old{$_} } @new;
        sleep 0.1;
    }
    is scalar(@new), 2, 'reloaded: two new workers';
    my $after = scrape($na);
    is v($after, 'registry_manifest_pushes_total'), v($before, 'registry_manifest_pushes_total'),
        '... the counts go on: registry_manifest_pushes_total ' . v($after, 'registry_manifest_pushes_total');
    is v($after, req('blob', 'GET', '2xx')), v($before, req('blob', 'GET', '2xx')),
        '... and requests by route';
}

# --- prometheus scrapes it --------------------------------------------

my $prom_dir = "$root/prometheus";
remove_tree($prom_dir);
make_path("$prom_dir/data");
open my $fh, '>', "$prom_dir/prometheus.yml" or die $!;
print $fh <<"EOF";
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: registry
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
close $fh;

# the alert rules of the README, as an operator copies them
my $readme = read_file(getcwd() . '/README.md') // '';
my ($rules) = $readme =~ /<!-- alert rules -->\n```yaml\n(.*?)```/s;
ok $rules, 'the README has alert rules';
open $fh, '>', "$prom_dir/rules.yml" or die $!;
print $fh $rules // '';
close $fh;
$out = `promtool check rules '$prom_dir/rules.yml' 2>&1`;
is $?, 0, 'promtool check rules: the README\'s rules are valid' or diag $out;
my %exported = map { $_ => 1 } $res->{body} =~ /^# TYPE (\S+) /mg;
my @named = ($rules // '') =~ /\b(registry_[a-z0-9_]+)/g;
s/_(bucket|sum|count)$// for @named;
my @unknown = grep { !$exported{$_} } @named;
ok @named && !@unknown, 'the rules name only exported series (' . scalar(@named) . ')'
    or diag "unknown: @unknown";

my $prom = fork // die "fork: $!";
if ($prom == 0) {
    open STDOUT, '>', "$prom_dir/prometheus.log";
    open STDERR, '>&', \*STDOUT;
    POSIX::setsid();
    exec 'prometheus', "--config.file=$prom_dir/prometheus.yml",
        "--storage.tsdb.path=$prom_dir/data", "--web.listen-address=127.0.0.1:$PORT_PROM";
    exit 127;
}
push @pids, $prom;

sub query {
    my ($q) = @_;
    (my $e = $q) =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    my $r = http_request(port => $PORT_PROM, method => 'GET', path => "/api/v1/query?query=$e");
    return undef unless $r->{status} eq '200';
    my $j = eval { decode_json($r->{body}) } or return undef;
    return $j->{status} eq 'success' ? $j->{data}{result} : undef;
}

my $pushes = v(scalar scrape($na), 'registry_manifest_pushes_total');
my $got;
$deadline = time + 60;
while (time < $deadline) {
    my $res = query('registry_manifest_pushes_total{job="registry"}');
    $got = $res->[0]{value}[1] if $res && @$res;
    last if defined $got;
    sleep 0.5;
}
is $got, $pushes, "prometheus scraped it: /api/v1/query says registry_manifest_pushes_total $pushes"
    or diag read_file("$prom_dir/prometheus.log");
my $q = query('sum by (route) (registry_http_requests_total{job="registry"})');
ok $q && (grep { ($_->{metric}{route} // '') eq 'manifest' } @$q), '... and requests by route';
$q = query('up{job="registry"}');
is $q && $q->[0]{value}[1], '1', '... up 1';
for my $rule (($rules // '') =~ /^\s*expr:\s*(.+?)\s*$/mg) {
    ok defined query($rule), "prometheus evaluates: $rule";
}
kill 'TERM', $prom;
waitpid $prom, 0;
@pids = grep { $_ != $prom } @pids;

# --- readiness --------------------------------------------------------

sub status { $na->request('GET', $_[0], timeout => 5)->{status} }
sub wait_status {
    my ($path, $want, $secs) = @_;
    my $deadline = time + $secs;
    my $s;
    while (1) {
        $s = status($path);
        return $s if $s eq $want || time > $deadline;
        sleep 0.1;
    }
}

is status('/readyz'), 200, '/readyz 200';
is status('/healthz'), 200, '/healthz 200';
is status('/livez'), 200, '/livez 200';

my $before = scrape($na);
my $rpid = read_file("$redis->{root}/redis.pid");
chomp $rpid;
kill 'STOP', $rpid;
is wait_status('/readyz', 503, 10), 503, 'Redis stalled (SIGSTOP): /readyz 503';
is status('/livez'), 200, '... /livez 200';
kill 'CONT', $rpid;
is wait_status('/readyz', 200, 20), 200, 'Redis back: /readyz 200';

$redis->stop;
is wait_status('/readyz', 503, 10), 503, 'Redis killed: /readyz 503';
is status('/healthz'), 503, '... /healthz 503';
is status('/livez'), 200, '... /livez 200';
is status('/v2/_catalog'), 503, '... a request needing Redis: 503';
$redis = start_redis(port => $redis->{port});
is wait_status('/readyz', 200, 20), 200, 'Redis restarted: /readyz 200';

my $after = scrape($na);
my $lost = v($after, 'registry_redis_connection_losses_total{connection="command"}')
    - v($before, 'registry_redis_connection_losses_total{connection="command"}');
cmp_ok $lost, '>=', 2, "connection losses counted: $lost";
cmp_ok v($after, 'registry_redis_errors_total{reason="not_connected"}')
    - v($before, 'registry_redis_errors_total{reason="not_connected"}'), '>=', 1,
    '... commands refused while it was away';
cmp_ok v($after, 'registry_redis_errors_total{reason="no_reply"}')
    - v($before, 'registry_redis_errors_total{reason="no_reply"}'), '>=', 1,
    '... a command without a reply (the stall)';
# every worker that lost its connection gets it back
$deadline = time + 15;
my $back;
while (1) {
    my $now = scrape($na);
    $back = v($now, 'registry_redis_reconnects_total{connection="command"}')
        - v($before, 'registry_redis_reconnects_total{connection="command"}');
    $lost = v($now, 'registry_redis_connection_losses_total{connection="command"}')
        - v($before, 'registry_redis_connection_losses_total{connection="command"}');
    last if $back == $lost || time > $deadline;
    status('/v2/_catalog');
    sleep 0.2;
}
is $back, $lost, "... as many reconnects ($back)";

($ok, $out) = promtool_metrics((scrape($na))[1]{body});
ok $ok, 'promtool check metrics after all that' or diag $out;

like $na->error_log, qr/connection lost|command timed out/, 'the outage was logged';
my $errors = $na->error_log . $nb->error_log;
$errors =~ s/^.*\[alert\].* exited on signal 9\n//mg;    # the workers killed above
unlike $errors, qr/\[(alert|crit|emerg)\]/, 'no alert, crit or emerg';

done_testing;
