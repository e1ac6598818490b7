# t/lib/Registry/Harness.pm itself, with plain nginx configuration: two
# instances side by side, following a Location header, a large upload.
BEGIN { push @INC, 't/lib' }
BEGIN { delete $ENV{TEST_NGINX_LOAD_MODULES} }    # plain nginx only
use strict;
use warnings;
use Test::More;
use Cwd ();
use Registry::Harness qw(start_nginx http_request free_ports);

# two ports of its own (free_ports: no other test file holds them)
my $port = free_ports(($ENV{TEST_NGINX_SERVER_PORT} || 1984) + 1, 2);

# instance A redirects to instance B, B stores files with WebDAV PUT
my $root_b = Cwd::getcwd() . "/t/servroot-harness-b";
my $b = start_nginx(port => $port + 1, servroot => $root_b, config => <<"EOF");
    location /files/ {
        root $root_b/html;
        dav_methods PUT DELETE;
        create_full_put_path on;
        client_max_body_size 20m;
    }
EOF
my $a = start_nginx(port => $port, servroot => 't/servroot-harness-a', config => <<"EOF");
    location /go {
        return 307 http://127.0.0.1:@{[$port + 1]}/files/big.bin;
    }
    location /small {
        client_max_body_size 1k;
        return 200 "never";
    }
EOF

# large body: 5 MiB through a PUT, back through a GET
my $data = join '', map { chr(($_ * 7) % 256) x 1024 } 1 .. 5120;
my $r = $a->request('GET', '/go');
is $r->{status}, 307, 'redirect';
like $r->{headers}{location}, qr{/files/big\.bin$}, 'Location header';
$r = $b->request('PUT', $r->{headers}{location}, body => $data,
    headers => [['Content-Type', 'application/octet-stream']]);
is $r->{status}, 201, 'PUT 5 MiB to the Location' or diag $r->{error} // $r->{body};
$r = $b->request('GET', '/files/big.bin');
is $r->{status}, 200, 'GET it back';
is length $r->{body}, length $data, 'same length';
ok $r->{body} eq $data, 'same bytes';

$r = $b->request('HEAD', '/files/big.bin');
is $r->{status}, 200, 'HEAD';
is $r->{headers}{'content-length'}, length $data, 'HEAD Content-Length';
is $r->{body}, '', 'HEAD has no body';
is $r->{error}, undef, 'HEAD response complete';

# body from a file
my $f = "$b->{servroot}/upload.bin";
open my $fh, '>:raw', $f or die $!;
print $fh "file body";
close $fh;
$r = $b->request('PUT', '/files/from-file', body_file => $f);
is $r->{status}, 201, 'PUT body_file';
is $b->request('GET', '/files/from-file')->{body}, 'file body', 'body_file content';

# the server answers before reading the body: the answer is still read
$r = $a->request('POST', '/small', body => 'x' x (2 * 1024 * 1024));
is $r->{status}, 413, 'early 413 on an oversized body';

# a standalone request, and a port nobody listens on
$r = http_request(port => $port, method => 'GET', path => '/none');
is $r->{status}, 404, 'http_request';
$b->stop;
$r = http_request(port => $port + 1, method => 'GET', path => '/', timeout => 2);
like $r->{error}, qr/cannot connect/, 'stopped instance refuses connections';
$a->stop;

done_testing;
