# Bodies nginx itself refuses in a registry location (issue 9): their
# answers are OCI error bodies, not nginx's HTML pages (errors.c).
#
#   - a chunked body with a bad chunk-size line, sent after the headers
#     (nginx finds it while the module waits for the body) or with them
#     (found before the handler returns), on a PATCH, a PUT ?digest= and
#     a manifest PUT: 400 with BLOB_UPLOAD_INVALID or MANIFEST_INVALID in
#     JSON, and the connection closed;
#   - a body over client_max_body_size (1m here), by its Content-Length
#     (refused before the module runs) or chunked (while it reads):
#     413 SIZE_INVALID in JSON, the connection closed (under /apis/, a
#     Kubernetes Status);
#   - what the module answers itself is untouched (a 404 BLOB_UNKNOWN).
#
# Real nginx, the suite's Redis and RGW; nginx on a free port from
# TEST_NGINX_SERVER_PORT + 150.
#
# Repositories: fbody/* (this file only).
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd ();
use IO::Socket::INET;
use IO::Select;
use JSON::PP ();
use Time::HiRes qw(sleep time);
use Registry::Blobs qw($HttpConfig $Config d);
use Registry::Harness qw(start_nginx free_ports http_request);

my $top = Cwd::getcwd();
my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} // 1984) + 150, 1);

# the registry location takes bodies up to 1m here
(my $config = $Config) =~ s/(registry;\n\s*)client_max_body_size 0;/${1}client_max_body_size 1m;/
    or die "no client_max_body_size in the registry location of \$Config\n";

my $ngx = start_nginx(port => $port, servroot => "$top/t/servroot-faults-bodies",
    root_location => 0, http_config => $HttpConfig, config => $config);

sub req { http_request(port => $port, timeout => 30, @_) }

sub post {
    my $r = req(method => 'POST', path => "/v2/$_[0]/blobs/uploads/");
    die "POST: $r->{status} $r->{body}\n" unless $r->{status} eq '202';
    return $r->{headers}{location};
}

# Sends the head, then (after $pause seconds, or at once) the body; reads
# the answer until the server closes the connection or 5 s passed.
# Returns {status, headers, body, closed}.
sub raw {
    my ($head, $body, $pause) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        Proto => 'tcp', Timeout => 5) or die "connect: $@\n";
    if ($pause) {
        print $s $head;
        sleep $pause;
        print $s $body;
    } else {
        print $s $head, $body;
    }
    my ($raw, $eof, $sel) = ('', 0, IO::Select->new($s));
    my $deadline = time + 5;
    while (time < $deadline && $sel->can_read($deadline - time)) {
        my $n = sysread($s, my $buf, 65536);
        if (!$n) { $eof = 1; last }
        $raw .= $buf;
    }
    close $s;
    my ($h, $b) = split /\r\n\r\n/, $raw, 2;
    my ($status) = ($h // '') =~ m{^HTTP/1\.\d (\d+)};
    my %headers = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () } split /\r\n/, $h // '';
    return { status => $status // 0, headers => \%headers, body => $b // '', closed => $eof };
}

sub chunked_head {
    my ($method, $path, $type) = @_;
    return "$method $path HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Type: $type\r\nTransfer-Encoding: chunked\r\n\r\n";
}

# the OCI error of an answer: its code, or why there is none
sub oci_code {
    my ($r) = @_;
    return "Content-Type $r->{headers}{'content-type'}"
        unless ($r->{headers}{'content-type'} // '') eq 'application/json';
    my $j = eval { JSON::PP::decode_json($r->{body}) } or return "no JSON: $r->{body}";
    my $e = ref $j->{errors} eq 'ARRAY' && @{ $j->{errors} } == 1 ? $j->{errors}[0] : undef;
    return 'no errors[0]' unless ref $e eq 'HASH' && length($e->{message} // '');
    return 'Content-Length does not match'
        unless ($r->{headers}{'content-length'} // -1) == length $r->{body};
    return $e->{code};
}

my $oct = 'application/octet-stream';
my $mt = 'application/vnd.oci.image.manifest.v1+json';
my $bad = "5\r\nhello\r\nzz\r\n";    # "zz" is no chunk size

my $r = req(method => 'GET', path => '/v2/');
is $r->{status}, 200, 'the registry answers';

# --- a bad chunked body: 400, the route's code, closed ---------------------

for my $pause (0.1, 0) {
    my $when = $pause ? 'after the headers' : 'with the headers';
    my $loc = post('fbody/chunk');
    my $put = post('fbody/chunk');
    my @cases = (
        ['PATCH', chunked_head('PATCH', $loc, $oct), 'BLOB_UPLOAD_INVALID'],
        ['PUT ?digest=', chunked_head('PUT', "$put?digest=" . d('x'), $oct), 'BLOB_UPLOAD_INVALID'],
        ['manifest PUT', chunked_head('PUT', '/v2/fbody/chunk/manifests/v1', $mt), 'MANIFEST_INVALID'],
    );
    for my $c (@cases) {
        my ($what, $head, $code) = @$c;
        my $r = raw($head, $bad, $pause);
        is $r->{status}, 400, "$what, bad chunk $when: 400";
        is oci_code($r), $code, "... $code in an OCI error body";
        is lc($r->{headers}{connection} // ''), 'close', '... Connection: close';
        ok $r->{closed}, '... and the connection closed by the server';
    }
    $r = req(method => 'GET', path => $loc);
    is $r->{status}, 204, "the session is still there ($when)";
    is $r->{headers}{range}, '0-0', '... untouched';
}

# --- over client_max_body_size: 413 SIZE_INVALID, closed ------------------

{
    my $loc = post('fbody/big');
    my $len = 2 * 1024 * 1024;
    my @cases = (
        ['PATCH with a Content-Length', "PATCH $loc HTTP/1.1\r\nHost: localhost\r\n"
            . "Content-Type: $oct\r\nContent-Length: $len\r\n\r\n", 'x' x 4096],
        ['manifest PUT with a Content-Length', "PUT /v2/fbody/big/manifests/v1 HTTP/1.1\r\n"
            . "Host: localhost\r\nContent-Type: $mt\r\nContent-Length: $len\r\n\r\n", '{'],
        ['chunked PATCH', chunked_head('PATCH', $loc, $oct),
            sprintf("%x\r\n", $len) . ('x' x 4096)],
    );
    for my $c (@cases) {
        my ($what, $head, $body) = @$c;
        my $r = raw($head, $body, 0.1);
        is $r->{status}, 413, "$what over 1m: 413";
        is oci_code($r), 'SIZE_INVALID', '... SIZE_INVALID in an OCI error body';
        is lc($r->{headers}{connection} // ''), 'close', '... Connection: close';
        ok $r->{closed}, '... and the connection closed by the server';
    }
    # the image API answers Kubernetes clients: a Status, not an OCI body
    $r = raw("POST /apis/image.openshift.io/v1/namespaces/fbody/imagestreams HTTP/1.1\r\n"
        . "Host: localhost\r\nContent-Type: application/json\r\n"
        . "Content-Length: $len\r\n\r\n", '{', 0.1);
    is $r->{status}, 413, 'an image API POST over 1m: 413';
    my $st = eval { JSON::PP::decode_json($r->{body}) } // {};
    is_deeply [@$st{qw(kind status code reason)}], ['Status', 'Failure', 413, 'RequestEntityTooLarge'],
        '... a Kubernetes Status' or diag $r->{body};
    ok $r->{closed}, '... and the connection closed by the server';

    $r = req(method => 'GET', path => $loc);
    is $r->{status}, 204, 'the session is still there';
    is $r->{headers}{range}, '0-0', '... untouched';
}

# --- the module's own answers are its own ---------------------------------

$r = req(method => 'GET', path => '/v2/fbody/chunk/blobs/' . d('no such blob'));
is $r->{status}, 404, 'an unknown blob: 404';
is oci_code($r), 'BLOB_UNKNOWN', '... BLOB_UNKNOWN, as the module answers';

my $log = $ngx->error_log;
like $log, qr/client sent invalid chunked body/, 'nginx logged the bad chunks';
like $log, qr/client intended to send too large/, '... and the bodies over the limit';

done_testing;
