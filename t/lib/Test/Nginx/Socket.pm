package Test::Nginx::Socket;

# A small runner with the interface of Test::Nginx::Socket (the CPAN / OpenResty
# module), for this project's data-driven tests. It is found at the END of
# @INC, so a real Test::Nginx::Socket wins where one is installed; each .t
# starts with
#
#   BEGIN { push @INC, 't/lib' }
#   use Test::Nginx::Socket 'no_plan';     # or: plan tests => repeat_each() * N;
#
# It is no more lenient than the real one: a file that passes here passes
# under openresty's Test::Nginx. It refuses (bails out on) what the real
# one refuses or silently gets wrong:
#   - a section it does not know (`--- request_body` is not one: put the
#     body in `--- request` after the request line)
#   - with `--- request` an ARRAY, a check that is not an ARRAY, or a
#     `--- more_headers` ARRAY with fewer entries than requests
#   - a `location /` in --- config without no_root_location() (the real
#     one adds its own and nginx refuses the duplicate)
#   - response_headers beside response_headers_like, or two of
#     response_body, response_body_like and response_body_unlike in one
#     block (the real one checks only the first)
#
# Supported:
#   functions  run_tests repeat_each no_shuffle no_root_location log_level
#              env_to_nginx workers master_on master_off timeout
#              server_port server_root html_dir add_block_preprocessor bail_out
#              (and Test::Base's: blocks plan is like ... via Test::Base)
#   sections   main_config http_config config user_files
#              request (eval: an ARRAY of requests, run in sequence on fresh
#              connections) raw_request more_headers
#              error_code error_code_like response_headers
#              response_headers_like raw_response_headers_like
#              response_body response_body_like response_body_unlike
#              error_log no_error_log timeout wait
#   $TEST_NGINX_* are substituted where the real one does: config sections,
#   user_files and a --- response_body string; never in requests or headers.
#   $ServerPort is substituted in expected headers and bodies.
#   --- error_log and --- no_error_log are checked after each request of an
#   array, each time on what nginx logged since the previous check.
#
# Environment: TEST_NGINX_BINARY, TEST_NGINX_LOAD_MODULES (space-separated
# .so paths), TEST_NGINX_SERVER_PORT (1984; a free port from there on is
# used and exported), TEST_NGINX_SERVROOT (t/servroot-<file name>; the
# real one exports TEST_NGINX_SERVER_ROOT only, so does this one),
# TEST_NGINX_WORKERS, TEST_NGINX_LOG_LEVEL (debug), TEST_NGINX_TIMEOUT (3 s a
# request), TEST_NGINX_NO_SHUFFLE, TEST_NGINX_REPEAT_EACH.
#
# Each block: write the conf, start nginx (daemon, master + workers), run the
# requests with raw sockets (HTTP/1.1, Connection: close), check, stop nginx
# (QUIT, KILL after 5 s). Nothing is left running.

use strict;
use warnings;

use Test::Base -base;    # lowercase: a subclass, without Spiffy's source filter
use Test::More ();
use Cwd qw(getcwd);
use File::Basename qw(basename);
use List::Util qw(shuffle);
use Time::HiRes qw(sleep);
use Registry::Harness ();

our @EXPORT = qw(run_tests run_test repeat_each no_shuffle no_root_location
    log_level env_to_nginx workers master_on master_off timeout server_port
    server_root html_dir add_block_preprocessor bail_out);

# the sections this runner knows; Test::Base's ONLY, SKIP and LAST too
our %Sections = map { $_ => 1 } qw(main_config http_config config user_files
    request raw_request more_headers error_code error_code_like
    response_headers response_headers_like raw_response_headers_like
    response_body response_body_like response_body_unlike error_log
    no_error_log timeout wait ONLY SKIP LAST);

our $RepeatEach   = $ENV{TEST_NGINX_REPEAT_EACH} || 1;
our $NoShuffle    = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $NoRootLoc    = 0;
# debug, as the real one: a no_error_log pattern sees info and notice lines
our $LogLevel     = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $Workers      = $ENV{TEST_NGINX_WORKERS} || 1;
our $Master       = 1;
our $Timeout      = $ENV{TEST_NGINX_TIMEOUT} || 3;
# a port no other test file holds (prove -j runs files side by side)
our $ServerPort   = Registry::Harness::free_ports($ENV{TEST_NGINX_SERVER_PORT} || 1984, 1);
our $ServRoot     = $ENV{TEST_NGINX_SERVROOT}
    || getcwd() . '/t/servroot-' . (basename($0) =~ s/\.t$//r);
our @EnvToNginx;
our @Preprocessors;

# tests and configs can refer to these (as with the real one)
$ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

sub repeat_each (@)  { $RepeatEach = shift if @_; $RepeatEach }
sub no_shuffle ()    { $NoShuffle = 1 }
sub no_root_location () { $NoRootLoc = 1 }
sub log_level (@)    { $LogLevel = shift if @_; $LogLevel }
sub workers (@)      { $Workers = shift if @_; $Workers }
sub master_on ()     { $Master = 1 }
sub master_off ()    { $Master = 0 }
sub timeout (@)      { $Timeout = shift if @_; $Timeout }
sub env_to_nginx (@) { push @EnvToNginx, @_ }
sub server_port ()   { $ServerPort }
sub server_root ()   { $ServRoot }
sub html_dir ()      { "$ServRoot/html" }
sub add_block_preprocessor (&) { push @Preprocessors, shift }
sub bail_out (@)     { Test::More::BAIL_OUT(@_) }

# "3", "3s", "500ms"
sub _seconds {
    my ($v) = @_;
    return undef unless defined $v;
    $v =~ s/^\s+|\s+$//g;
    return $1 / 1000 if $v =~ /^([\d.]+)ms$/;
    return $1 if $v =~ /^([\d.]+)s?$/;
    bail_out("bad time value: $v");
}

# $TEST_NGINX_* (config sections, user files, a response_body string)
sub _expand {
    my ($s) = @_;
    return $s if !defined $s || ref $s;
    return _port(Registry::Harness::expand_env($s));
}

# $ServerPort (expected headers and bodies)
sub _port {
    my ($s) = @_;
    $s =~ s/\$ServerPort\b/$ServerPort/g if defined $s && !ref $s;
    return $s;
}

# The value of a check for request $i of $n, as the real one takes it:
# with several requests it must be an ARRAY.
sub _nth {
    my ($block, $section, $i, $n) = @_;
    my $v = $block->$section;
    return undef unless defined $v;
    return ref $v eq 'ARRAY' ? $v->[$i] : $v if $n == 1;
    bail_out($block->name . " - You asked for many requests, the expected"
        . " results should be arrays as well (--- $section).")
        unless ref $v eq 'ARRAY';
    return $v->[$i];
}

# "Name: value" lines -> [[name, value]], "!Name" -> [name, undef]
sub _header_lines {
    my ($text) = @_;
    my @out;
    for my $l (split /\n/, $text // '') {
        next if $l =~ /^\s*(?:#.*)?$/;
        if ($l =~ /^\s*!\s*([^:\s]+)\s*$/) { push @out, [$1, undef]; next }
        my ($k, $v) = split /:\s*/, $l, 2;
        $k =~ s/^\s+|\s+$//g;
        $v //= '';
        $v =~ s/\s+$//;
        push @out, [$k, $v];
    }
    return @out;
}

# One request string ("METHOD URI [HTTP/1.x]\nbody") to raw bytes.
sub _build_request {
    my ($name, $req, $more_headers) = @_;
    1 while $req =~ s/^\s*#[^\n]*\n//s;    # leading comment lines
    $req =~ s/^\s+//;
    my ($first, $content) = split /\n/, $req, 2;
    my ($method, $uri, $ver) = split ' ', $first // '';
    bail_out("$name - request line should be non-empty") unless defined $method;
    $uri //= '/';
    $ver //= 'HTTP/1.1';

    my @hdrs = _header_lines($more_headers);
    my %has = map { lc $_->[0] => 1 } @hdrs;
    my $body;
    if (defined $content && $content ne '') {
        $body = $content;
        # trimmed as the real one does, unless the test frames the body itself
        $body =~ s/^\s+|\s+$//gs unless $has{'content-length'} || $has{'transfer-encoding'};
    }
    my $h = '';
    $h .= "Host: localhost\r\n" unless $has{host};
    $h .= "Connection: close\r\n" unless $has{connection};
    $h .= "$_->[0]: $_->[1]\r\n" for grep { defined $_->[1] } @hdrs;
    $h .= "Content-Length: " . length($body) . "\r\n"
        if defined $body && $body ne '' && !$has{'content-length'} && !$has{'transfer-encoding'};
    return ("$method $uri $ver\r\n$h\r\n" . ($body // ''), $method eq 'HEAD');
}

# The requests of a block: list of [raw bytes, is HEAD].
sub _requests {
    my ($block) = @_;
    my $name = $block->name;
    if (defined $block->raw_request) {
        my $raw = $block->raw_request;
        $raw = join '', @$raw if ref $raw eq 'ARRAY';
        return ([$raw, $raw =~ /^\s*HEAD\s/]);
    }
    my $req = $block->request;
    bail_out("$name - no --- request section") unless defined $req;
    my @reqs = ref $req eq 'ARRAY' ? @$req : ($req);
    my $mh = $block->more_headers;
    my @out;
    for my $i (0 .. $#reqs) {
        my $h = $mh;
        if (ref $mh eq 'ARRAY') {
            $h = $mh->[$i];
            bail_out("$name - --- more_headers lacks data for the ${i}th request")
                unless defined $h;
        }
        bail_out("$name - request $i: a string expected (packets are not supported)")
            if ref $reqs[$i];
        push @out, [_build_request($name, $reqs[$i], $h)];
    }
    return @out;
}

sub _check_response {
    my ($block, $res, $i, $n, $label) = @_;
    my $name = $block->name;
    my $b = $res->{body};

    if (defined $block->error_code_like) {
        my $v = _nth($block, 'error_code_like', $i, $n);
        Test::More::like($res->{status}, qr/$v/sm, "$name - status code ok$label");
    } else {
        my $want = _nth($block, 'error_code', $i, $n) // 200;
        $want =~ s/^\s+|\s+$//g;
        Test::More::is($res->{status}, $want, "$name - status code ok$label");
    }

    if (defined $block->raw_response_headers_like) {
        my $pat = _nth($block, 'raw_response_headers_like', $i, $n);
        Test::More::like($res->{raw_headers}, qr/$pat/s, "$name - raw resp headers like$label");
    }
    if (defined $block->response_headers) {
        for my $h (_header_lines(_nth($block, 'response_headers', $i, $n))) {
            my ($k, $want) = @$h;
            if (!defined $want) {
                Test::More::ok(!exists $res->{headers}{lc $k},
                    "$name - header $k not present in the raw headers$label");
            } else {
                Test::More::is($res->{headers}{lc $k} // '', _port($want),
                    "$name - header $k ok$label");
            }
        }
    }
    if (defined $block->response_headers_like) {
        for my $h (_header_lines(_nth($block, 'response_headers_like', $i, $n))) {
            my ($k, $pat) = @$h;
            Test::More::like($res->{headers}{lc $k} // '', qr/^$pat$/,
                "$name - header $k like ok$label");
        }
    }

    if (defined $block->response_body) {
        my $want = _expand(_nth($block, 'response_body', $i, $n));
        if (ref $want eq 'Regexp') {
            Test::More::like($b, $want, "$name - response_body - like$label");
        } else {
            Test::More::is($b, $want, "$name - response_body - response is expected$label");
        }
    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my $like = defined $block->response_body_like;
        my $pat = _port(_nth($block, $like ? 'response_body_like' : 'response_body_unlike', $i, $n));
        my $summary = substr($b // '', 0, 100);
        $summary =~ s/\s+/ /g;
        if ($like) {
            Test::More::like($b, qr/$pat/s, "$name - response_body_like - response is expected ($summary)$label");
        } else {
            Test::More::unlike($b, qr/$pat/s, "$name - response_body_unlike - response is expected ($summary)$label");
        }
    }
}

# --- error_log / --- no_error_log: lines (substrings) or an eval'd ARRAY
# (strings are substrings, qr// are regexes), searched in what nginx wrote
# to its error log since the previous check.
sub _patterns {
    my ($v) = @_;
    return () unless defined $v;
    return ($v) if ref $v eq 'Regexp';
    return grep { defined && $_ ne '' } @$v if ref $v eq 'ARRAY';
    chomp $v;
    return grep { $_ ne '' } split /\n+/, $v;
}

sub _check_error_log {
    my ($block, $log, $label) = @_;
    my $name = $block->name;
    my @lines = split /\n/, $log;
    my $match = sub {
        my ($pat) = @_;
        for my $l (@lines) {
            return $l if ref $pat ? $l =~ $pat : index($l, $pat) >= 0;
        }
        return undef;
    };
    for my $pat (_patterns($block->error_log)) {
        Test::More::ok(defined $match->($pat),
            "$name - pattern \"$pat\" matches a line in error.log$label");
    }
    for my $pat (_patterns($block->no_error_log)) {
        my $line = $match->($pat);
        Test::More::ok(!defined $line,
            "$name - pattern \"$pat\" does not match a line in error.log$label"
            . (defined $line ? " (it matches: $line)" : ''));
    }
}

sub _user_files {
    my ($block) = @_;
    my $uf = $block->user_files;
    return {} unless defined $uf;
    my %files;
    for my $part (split /^>>> /m, $uf) {
        next if $part =~ /^\s*$/;
        my ($fname, $content) = split /\n/, $part, 2;
        $fname =~ s/\s+$//;
        $files{$fname} = _expand($content // '');
    }
    return \%files;
}

# What the real runner would refuse or get wrong, refused before nginx starts.
sub _validate {
    my ($block) = @_;
    my $name = $block->name;
    my $map = $block->{_section_map} ? $block->{_section_map}[0] : {};
    for my $s (sort keys %{ $map || {} }) {
        bail_out("$name - unknown section --- $s")
            unless $Sections{$s};
    }
    bail_out("$name - --- response_headers and --- response_headers_like in"
        . " one block: the real Test::Nginx checks only the first")
        if defined $block->response_headers && defined $block->response_headers_like;
    my @body = grep { defined $block->$_ }
        qw(response_body response_body_like response_body_unlike);
    bail_out("$name - --- @body in one block: the real Test::Nginx checks"
        . " only the first") if @body > 1;
    my $req = $block->request;
    if (ref $req eq 'ARRAY' && @$req > 1) {
        for my $s (qw(error_code error_code_like response_headers
                response_headers_like raw_response_headers_like response_body
                response_body_like response_body_unlike)) {
            my $v = $block->$s;
            bail_out("$name - You asked for many requests, the expected"
                . " results should be arrays as well (--- $s).")
                if defined $v && ref $v ne 'ARRAY';
        }
    }
    bail_out("$name - the config declares `location /`: call no_root_location()"
        . " (the real Test::Nginx adds its own `location /`)")
        if !$NoRootLoc && ($block->config // '') =~ m{\blocation\s+/\s*\{};
}

sub run_test ($) {
    my ($block) = @_;
    _prepare($block);
    _run($block);
}

# preprocessors, then the refusals, before any nginx starts
sub _prepare {
    my ($block) = @_;
    $_->($block) for @Preprocessors;
    _validate($block);
    $block->{_registry_requests} = [_requests($block)];
}

sub _run {
    my ($block) = @_;
    my $name = $block->name;
    my @reqs = @{ $block->{_registry_requests} };

    my $ngx = eval {
        Registry::Harness::start_nginx(
            name          => $name,
            port          => $ServerPort,
            servroot      => $ServRoot,
            clean         => 0,
            main_config   => _expand($block->main_config),
            http_config   => _expand($block->http_config),
            config        => _expand($block->config),
            root_location => !$NoRootLoc,
            log_level     => $LogLevel,
            workers       => $Workers,
            master        => $Master,
            env           => \@EnvToNginx,
            user_files    => _user_files($block),
        );
    };
    if (!$ngx) {
        Test::More::fail("$name - nginx started");
        Test::More::diag($@);
        return;
    }

    my $timeout = _seconds($block->timeout) // _seconds($Timeout);
    my $n = @reqs;
    my $log_from = $ngx->{err_offset};
    for my $rep (1 .. $RepeatEach) {
        for my $i (0 .. $#reqs) {
            my ($raw, $head) = @{ $reqs[$i] };
            my $res = Registry::Harness::http_request(port => $ServerPort, raw => $raw,
                head => $head, timeout => $timeout);
            my $label = $n > 1 ? " (req $i)" : '';
            $label .= " (repeat $rep)" if $RepeatEach > 1;
            if ($res->{error}) {
                Test::More::fail("$name - request$label: $res->{error}");
            }
            _check_response($block, $res, $i, $n, $label);
            # as the real one: the error log after each request (after the
            # wait), each time only what was logged since the last check
            if (my $w = _seconds($block->wait)) { sleep $w }
            sleep 0.05;    # log-phase lines come after the response
            my $log = $ngx->error_log($log_from);
            $log_from += length $log;
            _check_error_log($block, $log, $label);
        }
    }
    $ngx->stop;
}

sub run_tests () {
    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks unless $NoShuffle;
    # an nginx left running by a run that died, then a fresh servroot per
    # test file, as the real one does
    bless({ pid_file => "$ServRoot/logs/nginx.pid", name => 'stale nginx' },
        'Registry::Harness')->stop;
    require File::Path;
    File::Path::remove_tree($ServRoot);
    _prepare($_) for @blocks;
    _run($_) for @blocks;
    Test::More::done_testing() unless Test::More->builder->has_plan;
}

1;
