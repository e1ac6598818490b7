# The test runner itself (t/lib/Test/Nginx/Socket.pm), with plain nginx
# configuration: no registry module needed.
BEGIN { push @INC, 't/lib' }
# plain nginx only: a module still being written must not fail these
BEGIN { delete $ENV{TEST_NGINX_LOAD_MODULES} }
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

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
--- response_headers_like
X-Foo: b.r
Server: nginx.*
--- response_body chomp



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



=== TEST 5: --- request_body is sent as written
--- config
    location = /len {
        return 200 "len=$content_length";
    }
--- request
PUT /len
--- request_body
ab cd
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



=== TEST 8: a single check applies to every request of an array
--- config
    location / {
        return 200 "ok $uri";
    }
--- request eval
["GET /x", "GET /y"]
--- response_body_like: ^ok /[xy]$



=== TEST 9: chunked response (SSI output has no length)
--- config
    location /ssi/ {
        ssi on;
        alias $TEST_NGINX_SERVROOT/html/;
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



=== TEST 10: $TEST_NGINX_* in config, requests and expectations
--- config
    location = /port {
        return 200 "port=$TEST_NGINX_SERVER_PORT $arg_p";
    }
--- request
GET /port?p=$TEST_NGINX_SERVER_PORT
--- timeout: 5
--- response_body eval
"port=$ENV{TEST_NGINX_SERVER_PORT} $ENV{TEST_NGINX_SERVER_PORT}"



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
