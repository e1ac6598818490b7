# The test runner itself (t/lib/Test/Nginx/Socket.pm), with plain nginx
# configuration: no registry module needed.
BEGIN { push @INC, 't/lib' }
# plain nginx only: a module still being written must not fail these
BEGIN { delete $ENV{TEST_NGINX_LOAD_MODULES} }
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

# What the real Test::Nginx refuses (or silently gets wrong) the project's
# runner refuses too, before nginx starts: each case is a small .t run in
# a subprocess with t/lib first in @INC (the project's runner, whichever
# runner runs this file), which must fail with the message.
use File::Temp qw(tempdir);
my $tmp = tempdir(CLEANUP => 1);
sub run_block_file {
    my ($name, $head, $blocks) = @_;
    my $file = "$tmp/$name.t";
    open my $fh, '>', $file or die "$file: $!";
    print $fh "use Test::Nginx::Socket 'no_plan';\n$head\nno_shuffle();\nrun_tests();\n"
        . "__DATA__\n\n$blocks";
    close $fh;
    local $ENV{TEST_NGINX_SERVROOT} = "$tmp/servroot-$name";
    my $out = `'$^X' -It/lib '$file' 2>&1`;
    return ($? >> 8, $out);
}

my %refused = (
    'unknown section' => ['', <<'EOT', qr/unknown section --- request_body/],
=== TEST 1: a request_body section
--- config
    location = /t { return 200 "len=$content_length"; }
--- request
PUT /t
--- request_body
abc
--- response_body chomp
len=3
EOT
    'scalar check beside an array request' => ['', <<'EOT', qr/the expected results should be arrays as well \(--- response_body_like\)/],
=== TEST 1: one pattern for two requests
--- config
    location /t/ { return 200 "ok"; }
--- request eval
["GET /t/a", "GET /t/b"]
--- error_code eval
[200, 200]
--- response_body_like: ok
EOT
    'more_headers shorter than the requests' => ['', <<'EOT', qr/more_headers lacks data for the 1th request/],
=== TEST 1: two requests, one set of headers
--- config
    location /t/ { return 200 "ok"; }
--- request eval
["GET /t/a", "GET /t/b"]
--- more_headers eval
["X-A: 1"]
--- error_code eval
[200, 200]
EOT
    'location / without no_root_location()' => ['', <<'EOT', qr/declares `location \/`: call no_root_location\(\)/],
=== TEST 1: a root location of its own
--- config
    location / { return 200 "ok"; }
--- request
GET /
EOT
    'response_body beside response_body_like' => ['', <<'EOT', qr/--- response_body response_body_like in one block/],
=== TEST 1: both body checks
--- config
    location = /t { return 200 "ok"; }
--- request
GET /t
--- response_body chomp
ok
--- response_body_like: ^ok$
EOT
    'response_headers beside response_headers_like' => ['', <<'EOT', qr/checks only the first/],
=== TEST 1: both header checks
--- config
    location = /t { add_header X-A 1; return 200; }
--- request
GET /t
--- response_headers
X-A: 1
--- response_headers_like
X-A: \d
EOT
);
for my $case (sort keys %refused) {
    my ($head, $blocks, $re) = @{ $refused{$case} };
    (my $name = $case) =~ s/\W+/-/g;
    my ($rc, $out) = run_block_file($name, $head, $blocks);
    Test::More::isnt($rc, 0, "refused: $case (exit status)");
    Test::More::like($out, qr/Bail out!.*$re/, "refused: $case (message)")
        or Test::More::diag($out);
    Test::More::unlike($out, qr/^ok /m, "refused: $case, before any request");
}

# the error log is searched again after each request: a line that only
# the second request logs fails the check after the first
my ($rc, $out) = run_block_file('errlog', '', <<'EOT');
=== TEST 1: logged by the second request only
--- config
    location = /ok { return 200; }
--- request eval
["GET /ok", "GET /nothere"]
--- error_code eval
[200, 404]
--- error_log
No such file or directory
EOT
Test::More::isnt($rc, 0, 'error_log: a line logged by a later request fails the earlier check');
Test::More::like($out, qr/^not ok .*pattern "No such file or directory".*\(req 0\)/m,
    'error_log: the failure names request 0') or Test::More::diag($out);
Test::More::like($out, qr/^ok .*pattern "No such file or directory".*\(req 1\)/m,
    'error_log: and request 1 passes') or Test::More::diag($out);

__DATA__

=== TEST 1: return with a body
--- config
    location = /hi {
        return 200 "hi";
    }
--- request
GET /hi
--- response_body chomp
hi
--- response_headers
Content-Length: 2
Content-Type: text/plain



=== TEST 2: added header present, another absent
--- config
    location = /h {
        add_header X-Foo bar;
        return 204;
    }
--- request
GET /h
--- error_code: 204
--- response_headers
X-Foo: bar
!X-Bar
--- response_body chomp



=== TEST 2b: response_headers_like (never beside response_headers: the real
one would check only that)
--- config
    location = /h {
        add_header X-Foo bar;
        return 204;
    }
--- request
GET /h
--- error_code: 204
--- response_headers_like
X-Foo: b.r
Server: nginx.*



=== TEST 3: 404 from the default root location, logged
--- config
--- request
GET /nope
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
No such file or directory
--- no_error_log
[alert]
[emerg]



=== TEST 4: request body: Content-Length set, body trimmed as Test::Nginx does
--- config
    location = /len {
        return 200 "len=$content_length method=$request_method";
    }
--- request
POST /len
  hello world
--- response_body chomp
len=11 method=POST



=== TEST 5: a body framed by the test (Content-Length given) is sent as written
--- config
    location = /len {
        return 200 "len=$content_length";
    }
--- request eval
"PUT /len\nab cd\n"
--- more_headers
Content-Length: 6
--- response_body chomp
len=6



=== TEST 6: more_headers
--- config
    location = /echo {
        return 200 "a=$http_x_a b=$http_x_b host=$host";
    }
--- request
GET /echo
--- more_headers
X-A: 1
X-B: two words
--- response_body chomp
a=1 b=two words host=localhost



=== TEST 7: an array of requests; checks per request; more_headers on each
--- config
    location /a {
        add_header X-Req $uri;
        return 200 "A:$http_x_t";
    }
    location /b {
        return 201 "B:$http_x_t";
    }
--- request eval
["GET /a", "POST /b\nxyz", "HEAD /a"]
--- more_headers
X-T: t
--- error_code eval
[200, 201, 200]
--- response_body eval
["A:t", "B:t", ""]
--- response_headers eval
["X-Req: /a", "!X-Req", "X-Req: /a\nContent-Length: 3"]



=== TEST 8: a single more_headers applies to every request of an array
--- config
    location /t/ {
        return 200 "ok $uri $http_x_t";
    }
--- request eval
["GET /t/x", "GET /t/y"]
--- more_headers
X-T: both
--- response_body_like eval
["^ok /t/x both\$", "^ok /t/y both\$"]



=== TEST 9: chunked response (SSI output has no length)
--- config
    location /ssi/ {
        ssi on;
        alias $TEST_NGINX_SERVER_ROOT/html/;
    }
--- user_files
>>> page.html
<!--# echo var="uri" --> done
--- request
GET /ssi/page.html
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
/ssi/page.html done



=== TEST 10: $TEST_NGINX_* substituted in the config, not in requests
--- config
    location = /port {
        return 200 "port=$TEST_NGINX_SERVER_PORT arg=$arg_p";
    }
--- request
GET /port?p=$TEST_NGINX_SERVER_PORT
--- timeout: 5
--- response_body_like: ^port=\d+ arg=\$TEST_NGINX_SERVER_PORT$



=== TEST 10b: ... and in an expected response_body string
--- config
    location = /port {
        return 200 "port=$TEST_NGINX_SERVER_PORT";
    }
--- request
GET /port
--- response_body chomp
port=$TEST_NGINX_SERVER_PORT



=== TEST 11: http_config and main_config sections
--- main_config
env TEST_RUNNER_DUMMY;
--- http_config
    map $uri $mapped {
        default "m:$uri";
    }
--- config
    location = /map {
        return 200 $mapped;
    }
--- request
GET /map
--- response_body chomp
m:/map



=== TEST 12: error_log patterns as an eval array, with a regex
--- config
    location = /warn {
        return 302 /elsewhere;
    }
--- request
GET /nothere/file
--- error_code: 404
--- error_log eval
[qr/open\(\) "[^"]+nothere\/file" failed/, "No such file"]
--- no_error_log eval
[qr/\[crit\]/]



=== TEST 13: a chunked request body framed by the test is sent as is
--- config
    location = /te {
        return 200 "te=$http_transfer_encoding";
    }
--- request eval
"POST /te\n3\r\nabc\r\n0\r\n\r\n"
--- more_headers
Transfer-Encoding: chunked
--- response_body chomp
te=chunked



=== TEST 14: error_log is checked after each request of an array
--- config
--- request eval
["GET /nothere/a", "GET /nothere/b"]
--- error_code eval
[404, 404]
--- error_log
No such file or directory
