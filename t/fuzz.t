# scripts/fuzz against a real registry (nginx + the module, the suite's
# Redis and RGW, authorization on, a user with push rights in one
# project): ~25 s of hostile requests must give no finding (no worker
# crash, no 5xx, no connection left open, no descriptor kept, the honest
# pushes and pulls intact).
#
# First, that the fuzzer sees what it must, each fault caused for real:
#   - a registry whose Redis does not listen: 5xx found
#   - a worker killed (SIGKILL: SIGSEGV would be a sanitizer report) during a run: crash found
#   - a server (a few lines of Perl) that answers but never closes:
#     connections left open found, after the answer and after the client
#     hung up
#
# FUZZ_SEED=N picks the seed of the long run (else one from the clock,
# printed); FUZZ_DURATION=S its length (25).  User fuzzuser, project
# fuzzproj (this file only).
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd ();
use File::Path qw(make_path);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use Registry::Auth qw($AuthHttpConfig $AuthConfig editor);
use Registry::Harness qw(start_nginx free_ports read_file);

my $top = Cwd::getcwd();
my $base = free_ports(($ENV{TEST_NGINX_SERVER_PORT} // 1984) + 140, 4);
my $fuzz = "$top/scripts/fuzz";

my $auth_http = $AuthHttpConfig
    . "    registry_auth_cache zone=fuzz_auth:1m valid=10s;\n";

# a user who may push in one project, its token in a file only we read
my $token = editor('fuzzuser', 'fuzzproj');
make_path("$top/var/test");
my $token_file = "$top/var/test/fuzz-token";
{
    umask 077;
    open my $fh, '>', $token_file or die "$token_file: $!\n";
    print $fh "$token\n";
    close $fh;
}
END { unlink $token_file if $token_file }

sub instance {
    my (%o) = @_;
    return start_nginx(port => $o{port}, servroot => "$top/t/servroot-fuzz-$o{name}",
        root_location => 0, workers => $o{workers} // 2,
        http_config => $o{http} // $auth_http, config => $AuthConfig);
}

# scripts/fuzz ARGS: (exit status, output); $during->() runs meanwhile
sub run_fuzz {
    my ($during, @args) = @_;
    my $out = "$top/var/test/fuzz-out.$$";
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        open STDOUT, '>', $out or die;
        open STDERR, '>&', \*STDOUT or die;
        exec $fuzz, @args or die "exec $fuzz: $!\n";
    }
    $during->() if $during;
    waitpid $pid, 0;
    my $rc = $? >> 8;
    open my $fh, '<', $out or die "$out: $!\n";
    local $/;
    my $text = <$fh> // '';
    close $fh;
    unlink $out;
    return ($rc, $text);
}

sub ngx_args {
    my ($ngx) = @_;
    return ('--url', $ngx->url, '--pid-file', "$ngx->{servroot}/logs/nginx.pid",
        '--error-log', "$ngx->{servroot}/logs/error.log");
}

# --- the fuzzer finds what it must ---------------------------------------

{
    # Redis on a port where nothing listens: every request that needs it
    # fails with a 5xx
    my $dead = free_ports($base + 20, 1);
    (my $http = $auth_http) =~ s/registry_redis [^;]+;/registry_redis 127.0.0.1:$dead;/;
    my $ngx = instance(name => 'noredis', port => $base + 1, http => $http, workers => 1);
    my ($rc, $out) = run_fuzz(undef, ngx_args($ngx), '--duration', '3s', '--jobs', '1',
        '--token-file', $token_file, '--project', 'fuzzproj', '--seed', 1);
    is $rc, 1, 'Redis down: the fuzzer fails';
    like $out, qr/^#\d+ \[5xx\] .*answered 5\d\d/m, '... with a 5xx finding' or diag $out;
    like $out, qr/^  reproducer/m, '... and its reproducer';
    unlike $out, qr/\Q$token\E/, '... which never shows the token';
    $ngx->stop;
}

{
    # a worker killed during a run
    my $ngx = instance(name => 'crash', port => $base + 1, workers => 2);
    my ($rc, $out) = run_fuzz(sub {
        sleep 2;
        my ($w) = grep { (read_file("/proc/$_/stat") // '') =~ /^\d+ \(nginx\) \S+ $ngx->{pid} / }
            map { m{/proc/(\d+)/} ? $1 : () } glob '/proc/[0-9]*/stat';
        kill 'KILL', $w if $w;
    }, ngx_args($ngx), '--duration', '5s', '--jobs', '2', '--token-file', $token_file,
        '--project', 'fuzzproj', '--leak-timeout', '5');
    is $rc, 1, 'a worker killed (SIGKILL) during a run: the fuzzer fails';
    like $out, qr/^#\d+ \[crash\] .*(?:exited on signal 11|worker pids changed)/m,
        '... with a crash finding' or diag $out;
    $ngx->stop;
}

{
    # a server that answers and never closes, whoever hangs up
    my $port = $base + 2;
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
            Listen => 128, ReuseAddr => 1) or POSIX::_exit(1);
        my $sel = IO::Select->new($l);
        my (%in, @held);
        my $end = time + 60;
        while (time < $end) {
            for my $s ($sel->can_read(0.2)) {
                if ($s == $l) { my $c = $l->accept or next; $sel->add($c); next }
                my $n = sysread($s, my $b, 65536);
                if (!$n) { $sel->remove($s); push @held, $s; next }    # never closed
                $in{$s} .= $b;
                syswrite $s, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
                    if $in{$s} =~ /\r\n\r\n/ && !$in{"answered $s"}++;
            }
        }
        POSIX::_exit(0);
    }
    my $t = time;
    sleep 0.05 until IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) || time > $t + 5;
    my ($rc, $out) = run_fuzz(undef, '--url', "http://127.0.0.1:$port", '--duration', '2s',
        '--jobs', '2', '--eof-timeout', '2', '--leak-timeout', '3', '--response-timeout', '3');
    kill 'KILL', $pid;
    waitpid $pid, 0;
    is $rc, 1, 'a server that never closes: the fuzzer fails';
    like $out, qr/^#\d+ \[open-after-response\]/m, '... an answer, then the connection left open'
        or diag $out;
    like $out, qr/^#\d+ \[open-after-client-close\]/m, '... the client hung up, the server did not';
}

# --- the registry under fuzz -------------------------------------------------

my $seed = $ENV{FUZZ_SEED} // int(time) % 1_000_000;
my $duration = $ENV{FUZZ_DURATION} // 25;
my $ngx = instance(name => 'main', port => $base, workers => 2);
my ($rc, $out) = run_fuzz(undef, ngx_args($ngx), '--duration', "${duration}s", '--jobs', '4',
    '--token-file', $token_file, '--project', 'fuzzproj', '--seed', $seed,
    '--out', "$ngx->{servroot}/findings");
note "seed $seed";
is $rc, 0, "${duration}s of fuzz (seed $seed): no finding" or diag $out;
my ($reqs) = $out =~ /^fuzz: (\d+) requests/m;
cmp_ok $reqs // 0, '>=', 100, '... at least 100 requests (' . ($reqs // 0) . ')';
my ($honest) = $out =~ /\bhonest: (\d+)/;
cmp_ok $honest // 0, '>=', 2, '... and honest pushes and pulls among them (' . ($honest // 0) . ')';
unlike $out, qr/\Q$token\E/, '... the output never shows the token';
$ngx->stop;

done_testing;
