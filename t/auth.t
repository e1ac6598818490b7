# Authorization: the challenge, the token endpoint, Basic and Bearer
# credentials, each role allowing and refusing the right actions, public
# projects, project creation on push, mounts across projects, a custom
# authorizer location.  Real nginx with the module, real Redis; the users,
# projects and roles are made with the admin CLI (t/lib/Registry/Auth.pm).
#
# Projects aproj, aother, apub, anew; users auth* (this suite's only).
# Nothing here needs S3: allowed requests end in answers that Redis alone
# gives (404 for unknown manifests, 202 for a new upload session, 201 for
# a mount).
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Cwd ();
# a servroot of its own: t/auth-zz-logs.t greps its logs after the run
BEGIN { $ENV{TEST_NGINX_SERVROOT} = Cwd::getcwd() . '/t/servroot-auth' }
use Test::Nginx::Socket 'no_plan';
use Test::More ();
use Digest::SHA qw(sha256_hex);
use Registry::Auth qw($AuthHttpConfig $AuthConfig setup_people basic redis_cli
    leaked_tokens remember_tokens);
use Registry::Harness qw(start_redis free_ports);
use Registry::Blobs qw(registry_blocks);

# a Redis of its own: the users, projects and cluster roles
# of Registry::Auth are made from scratch by each auth test file, which
# would undo one another's run side by side (prove -j)
my $redis = start_redis(port => free_ports(($ENV{TEST_NGINX_REDIS_PORT} || 16379) + 60, 1));
$ENV{TEST_NGINX_REDIS_PORT} = $redis->{port};

our %T = %{ setup_people() };
our $BAD = 'sha256~notAValidTokenAtAll000000000000000000000';
remember_tokens($BAD);

sub bearer { "Authorization: Bearer $T{$_[0]}" }

# a blob known to aproj/src and aother/src, for the mounts
our $BLOB = 'sha256:' . sha256_hex('auth test blob');
for my $repo (qw(aproj/src aother/src)) {
    redis_cli('SADD', "repo:$repo:blobs", $BLOB);
    redis_cli('SADD', "blob:$BLOB:links", $repo);
    redis_cli('ZADD', 'repos', 0, $repo);
}
redis_cli('HSET', "blob:$BLOB", 'size', 14, 'key', "blobs/$BLOB", 'created', 0);

our $ZERO = 'sha256:' . ('0' x 64);

our $UNAUTHORIZED = '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}';
our $DENIED = '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}';

our $HttpConfig = $AuthHttpConfig . <<'_EOC_';
    registry_auth_cache zone=registry_auth:1m valid=10s;
    log_format registry '$remote_addr $registry_user "$request" $status';
    access_log $TEST_NGINX_SERVROOT/logs/access.log registry;
_EOC_

our $Config = $AuthConfig;

registry_blocks(http_config => $HttpConfig, config => $Config,
    no_error_log => "[crit]\n[alert]\n[emerg]");
# info: the module's refusals are logged at that level
log_level('info');
run_tests();

# no token in any log this file's nginx wrote
my @logs = glob("$ENV{TEST_NGINX_SERVROOT}/logs/*.log");
Test::More::ok(scalar @logs, 'logs to check: ' . join(' ', map { s{.*/}{}r } @logs));
my @leaks = leaked_tokens([values %T, $BAD], @logs);
Test::More::is(scalar @leaks, 0, 'no token in the logs')
    or Test::More::diag(join "\n", map { "$_->[1] in $_->[0]" } @leaks);

# nginx stopped after each block: nothing may have been left open
my $errors = do { local (@ARGV, $/) = "$ENV{TEST_NGINX_SERVROOT}/logs/error.log"; <> } // '';
my @alerts = $errors =~ /^(.*\[(?:alert|crit|emerg)\].*)$/mg;
Test::More::is(scalar @alerts, 0, 'no alert in the error log, shutdowns included')
    or Test::More::diag(join "\n", @alerts[0 .. ($#alerts < 4 ? $#alerts : 4)]);

__DATA__

=== TEST 1: no credentials: 401 with the challenge, scoped to the request
--- request eval
[
    "GET /v2/",
    "GET /v2/aproj/app/manifests/latest",
    "HEAD /v2/aproj/app/blobs/$::ZERO",
    "POST /v2/aproj/app/blobs/uploads/",
    "DELETE /v2/aproj/app/manifests/$::ZERO",
    "GET /v2/_catalog",
]
--- error_code eval
[(401) x 6]
--- response_headers eval
[
    qq{WWW-Authenticate: Bearer realm="http://localhost/openshift/token",service="localhost"\nDocker-Distribution-API-Version: registry/2.0\nContent-Type: application/json},
    qq{WWW-Authenticate: Bearer realm="http://localhost/openshift/token",service="localhost",scope="repository:aproj/app:pull"},
    qq{WWW-Authenticate: Bearer realm="http://localhost/openshift/token",service="localhost",scope="repository:aproj/app:pull"},
    qq{WWW-Authenticate: Bearer realm="http://localhost/openshift/token",service="localhost",scope="repository:aproj/app:pull,push"},
    qq{WWW-Authenticate: Bearer realm="http://localhost/openshift/token",service="localhost",scope="repository:aproj/app:delete"},
    qq{WWW-Authenticate: Bearer realm="http://localhost/openshift/token",service="localhost",scope="registry:catalog:*"},
]
--- response_body eval
[$::UNAUTHORIZED, $::UNAUTHORIZED, "", $::UNAUTHORIZED, $::UNAUTHORIZED, $::UNAUTHORIZED]
--- error_log
registry: 401 UNAUTHORIZED: authentication required



=== TEST 2: the realm and service can be set; the Host header's port is kept
--- http_config eval
$::HttpConfig . "
    registry_auth_realm https://auth.example.com/token;
    registry_auth_service registry.example.com;
"
--- request eval
["GET /v2/aproj/app/tags/list", "GET /v2/aproj/app/tags/list"]
--- more_headers
Host: reg.local:5000
--- error_code eval
[401, 401]
--- response_headers eval
[('WWW-Authenticate: Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:aproj/app:pull"') x 2]



=== TEST 3: default realm from the Host header, port included
--- request
GET /v2/
--- more_headers
Host: reg.local:5000
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer realm="http://reg.local:5000/openshift/token",service="reg.local:5000"



=== TEST 4: token endpoint: no credentials give the anonymous token
--- request
GET /openshift/token?account=x&service=localhost&scope=repository:apub/app:pull
--- error_code: 200
--- response_headers
Content-Type: application/json
Cache-Control: no-store
--- response_body chomp
{"token":"anonymous","access_token":"anonymous"}



=== TEST 5: token endpoint: Basic with a valid token (any user name) gives it back
--- request
GET /openshift/token?service=localhost
--- more_headers eval
"Authorization: " . ::basic('anything', $::T{authalice})
--- error_code: 200
--- response_body eval
qq({"token":"$::T{authalice}","access_token":"$::T{authalice}"})



=== TEST 6: token endpoint: Basic with a bad token is 401
--- request
GET /openshift/token?service=localhost
--- more_headers eval
"Authorization: " . ::basic('authalice', $::BAD)
--- error_code: 401
--- response_headers_like
WWW-Authenticate: Bearer realm="http://localhost/openshift/token",service="localhost"
--- response_body eval
$::UNAUTHORIZED



=== TEST 7: token endpoint: a revoked-looking or malformed Basic is 401
--- request eval
["GET /openshift/token", "GET /openshift/token", "GET /openshift/token"]
--- more_headers eval
[
    "Authorization: Basic !!!notbase64",
    "Authorization: " . ::basic('user', ''),
    "Authorization: Digest username=x",
]
--- error_code eval
[401, 401, 401]



=== TEST 8: Basic with a colon in the user name is refused, even with a valid token
--- request eval
["GET /v2/", "GET /openshift/token", "GET /v2/aproj/app/tags/list"]
--- more_headers eval
"Authorization: " . ::basic('some:name', $::T{authalice})
--- error_code eval
[401, 401, 401]
--- response_body eval
[$::UNAUTHORIZED, $::UNAUTHORIZED, $::UNAUTHORIZED]



=== TEST 9: Basic with the token as password works on /v2 (the user name is ignored)
--- request eval
["GET /v2/", "GET /v2/aproj/app/manifests/latest"]
--- more_headers eval
"Authorization: " . ::basic('not-even-a-user', $::T{authalice})
--- error_code eval
[200, 404]
--- response_body eval
["{}", qr/MANIFEST_UNKNOWN/]



=== TEST 10: Bearer: a valid token passes GET /v2/, twice (the second from the cache)
--- request eval
["GET /v2/", "GET /v2/", "HEAD /v2/"]
--- more_headers eval
::bearer('authalice')
--- error_code eval
[200, 200, 200]
--- response_body eval
["{}", "{}", ""]



=== TEST 11: Bearer: a bad token, the anonymous token, an empty one: 401 on /v2/
--- request eval
["GET /v2/", "GET /v2/", "GET /v2/"]
--- more_headers eval
["Authorization: Bearer $::BAD", "Authorization: Bearer anonymous", "Authorization: Bearer "]
--- error_code eval
[401, 401, 401]
--- response_headers_like eval
[("WWW-Authenticate: Bearer realm=.*") x 3]



=== TEST 12: registry-editor: pull and push
--- request eval
[
    "GET /v2/aproj/app/manifests/latest",
    "GET /v2/aproj/src/tags/list",
    "POST /v2/aproj/app/blobs/uploads/",
]
--- more_headers eval
::bearer('authalice')
--- error_code eval
[404, 200, 202]
--- response_body eval
[qr/MANIFEST_UNKNOWN/, '{"name":"aproj/src","tags":[]}', ""]
--- response_headers_like eval
["", "", "Location: /v2/aproj/app/blobs/uploads/[0-9a-f]+"]



=== TEST 12b: registry-editor: no delete (each refusal logged)
--- request eval
[
    "DELETE /v2/aproj/app/manifests/$::ZERO",
    "DELETE /v2/aproj/app/blobs/$::ZERO",
]
--- more_headers eval
::bearer('authalice')
--- error_code eval
[403, 403]
--- response_body eval
[$::DENIED, $::DENIED]
--- response_headers eval
["!WWW-Authenticate", "!WWW-Authenticate"]
--- error_log
registry: 403 DENIED



=== TEST 13: registry-viewer: pull only
--- request eval
[
    "GET /v2/aproj/app/manifests/latest",
    "HEAD /v2/aproj/app/blobs/$::ZERO",
    "POST /v2/aproj/app/blobs/uploads/",
    "PUT /v2/aproj/app/manifests/latest\n{}",
    "DELETE /v2/aproj/app/manifests/$::ZERO",
]
--- more_headers eval
::bearer('authbob')
--- error_code eval
[404, 404, 403, 403, 403]



=== TEST 14: registry-admin: pull, push and delete
--- request eval
[
    "GET /v2/aproj/app/manifests/latest",
    "POST /v2/aproj/app/blobs/uploads/",
    "DELETE /v2/aproj/app/manifests/$::ZERO",
]
--- more_headers eval
::bearer('authcarol')
--- error_code eval
[404, 202, 404]



=== TEST 15: system:image-builder: pull and push, no delete
--- request eval
[
    "GET /v2/aproj/app/manifests/latest",
    "POST /v2/aproj/app/blobs/uploads/",
    "DELETE /v2/aproj/app/manifests/$::ZERO",
]
--- more_headers eval
::bearer('authbuilder')
--- error_code eval
[404, 202, 403]



=== TEST 16: a user without any role: a valid login, nothing else
--- request eval
[
    "GET /v2/",
    "GET /v2/aproj/app/manifests/latest",
    "POST /v2/aproj/app/blobs/uploads/",
    "DELETE /v2/aproj/app/manifests/$::ZERO",
    "GET /v2/_catalog",
]
--- more_headers eval
::bearer('authdave')
--- error_code eval
[200, 403, 403, 403, 200]
--- response_body eval
["{}", $::DENIED, $::DENIED, $::DENIED, qr/^\{"repositories":\[("apub\/[^"]*",?)*\]\}$/]



=== TEST 17: system:registry pulls from every project, pushes only where a role allows
--- request eval
[
    "GET /v2/aproj/app/manifests/latest",
    "GET /v2/apub/app/manifests/latest",
    "POST /v2/aproj/app/blobs/uploads/",
    "POST /v2/aother/app/blobs/uploads/",
    "DELETE /v2/aother/app/manifests/$::ZERO",
]
--- more_headers eval
::bearer('authreg')
--- error_code eval
[404, 404, 403, 202, 403]



=== TEST 18: system:image-pruner deletes anywhere, pulls nothing private
--- request eval
[
    "DELETE /v2/aproj/app/manifests/$::ZERO",
    "DELETE /v2/aother/app/blobs/$::ZERO",
    "GET /v2/aproj/app/manifests/latest",
    "POST /v2/aproj/app/blobs/uploads/",
]
--- more_headers eval
::bearer('authpruner')
--- error_code eval
[404, 404, 403, 403]



=== TEST 19: a public project: anonymous pull; push needs a login, then a role
--- request eval
[
    "GET /v2/apub/app/manifests/latest",
    "GET /v2/apub/app/tags/list",
    "HEAD /v2/apub/app/blobs/$::ZERO",
    "POST /v2/apub/app/blobs/uploads/",
    "GET /v2/aproj/app/manifests/latest",
]
--- error_code eval
[404, 404, 404, 401, 401]
--- response_headers eval
["!WWW-Authenticate", "", "", qq{WWW-Authenticate: Bearer realm="http://localhost/openshift/token",service="localhost",scope="repository:apub/app:pull,push"}, ""]



=== TEST 20: the anonymous token from the token endpoint pulls a public project
--- request eval
["GET /v2/apub/app/manifests/latest", "POST /v2/apub/app/blobs/uploads/"]
--- more_headers
Authorization: Bearer anonymous
--- error_code eval
[404, 401]



=== TEST 21: a logged-in user without a role pulls a public project, cannot push there
--- request eval
["GET /v2/apub/app/manifests/latest", "POST /v2/apub/app/blobs/uploads/"]
--- more_headers eval
::bearer('authdave')
--- error_code eval
[404, 403]
--- response_body eval
[qr/MANIFEST_UNKNOWN|NAME_UNKNOWN/, $::DENIED]



=== TEST 22: push into a project the user has no role in is 403 DENIED
--- request eval
[
    "POST /v2/aother/app/blobs/uploads/",
    "PUT /v2/aother/app/manifests/v1\n{}",
    "POST /v2/nosuchproject/app/blobs/uploads/",
]
--- more_headers eval
::bearer('authalice')
--- error_code eval
[403, 403, 403]
--- response_body eval
[($::DENIED) x 3]



=== TEST 23: an unknown project: created by a first push of a self-provisioner
--- request eval
[
    "HEAD /v2/anew/app/blobs/$::ZERO",
    "POST /v2/anew/app/blobs/uploads/",
    "DELETE /v2/anew/app/manifests/$::ZERO",
]
--- more_headers eval
::bearer('authself')
--- error_code eval
[404, 202, 404]



=== TEST 24: the project created by that push is private, its creator its registry-admin
--- request eval
["GET /v2/anew/app/manifests/latest", "GET /v2/anew/app/manifests/latest"]
--- more_headers eval
[::bearer('authalice'), "X-None: 1"]
--- error_code eval
[403, 401]



=== TEST 25: the catalog lists only what the user may pull
--- request eval
["GET /v2/_catalog", "GET /v2/_catalog"]
--- more_headers eval
[::bearer('authalice'), ::bearer('authroot')]
--- error_code eval
[200, 200]
--- response_body_like eval
[
    qr/^(?!.*(?:aother|ttest|zzcatalog))\{"repositories":\[("(aproj|apub)\/[^"]*",?)*\]\}$/,
    qr/"aother\/src".*"aproj\/src"/,
]



=== TEST 26: a mount from a repository the user may not pull is a new upload (202)
--- request eval
[
    "POST /v2/aproj/app/blobs/uploads/?mount=$::BLOB&from=aother/src",
    "POST /v2/aproj/app/blobs/uploads/?mount=$::BLOB&from=aproj/src",
]
--- more_headers eval
::bearer('authalice')
--- error_code eval
[202, 201]
--- response_headers_like eval
["Location: /v2/aproj/app/blobs/uploads/[0-9a-f]+", "Location: /v2/aproj/app/blobs/$::BLOB"]



=== TEST 27: a mount from a repository the user may pull (system:registry) mounts
--- request eval
"POST /v2/aother/dst/blobs/uploads/?mount=$::BLOB&from=aproj/src"
--- more_headers eval
::bearer('authreg')
--- error_code: 201
--- response_headers eval
"Docker-Content-Digest: $::BLOB"



=== TEST 28: a request the router refuses gets its own error, with or without credentials
--- request eval
["GET /v2/onlyone/manifests/latest", "GET /v2/a/b/c/manifests/latest", "GET /nothing"]
--- error_code eval
[400, 400, 404]
--- response_body_like eval
[qr/NAME_INVALID/, qr/NAME_INVALID/, qr/UNSUPPORTED/]



=== TEST 29: a custom authorizer location, answering by the Authorization header
--- http_config eval
$::HttpConfig =~ s{registry_auth /_registry_auth;}{registry_auth /stub;}r
--- config eval
$::Config . '
    location = /stub {
        internal;
        if ($http_authorization = "Bearer good") {
            return 200;
        }
        if ($http_authorization = "") {
            return 401;
        }
        return 403;
    }
'
--- request eval
[
    "GET /v2/",
    "GET /v2/aproj/app/manifests/latest",
    "GET /v2/aproj/app/manifests/latest",
    "GET /v2/aproj/app/manifests/latest",
    "GET /v2/aproj/app/manifests/latest",
    "GET /openshift/token",
]
--- more_headers eval
[
    "Authorization: Bearer good",
    "Authorization: Bearer good",
    "Authorization: " . ::basic('anyone', 'good'),
    "Authorization: Bearer bad",
    "X-Nothing: 1",
    "Authorization: " . ::basic('anyone', 'good'),
]
--- error_code eval
[200, 404, 404, 403, 401, 200]
--- response_body eval
["{}", qr/MANIFEST_UNKNOWN/, qr/MANIFEST_UNKNOWN/, $::DENIED, $::UNAUTHORIZED, '{"token":"good","access_token":"good"}']



=== TEST 30: the custom authorizer sees the action, the repository and the project
--- http_config eval
$::HttpConfig =~ s{registry_auth /_registry_auth;}{registry_auth /stub;}r
--- config eval
$::Config . '
    location = /stub {
        internal;
        if ($http_x_registry_action != "push") {
            return 403;
        }
        if ($http_x_registry_repository != "aproj/app") {
            return 403;
        }
        if ($http_x_registry_project != "aproj") {
            return 403;
        }
        if ($http_content_length) {
            return 403;
        }
        if ($http_content_type) {
            return 403;
        }
        return 204;
    }
'
--- request eval
[
    "POST /v2/aproj/app/blobs/uploads/",
    "PUT /v2/aproj/app/manifests/v1\n{\"not\":\"a manifest\"}",
    "GET /v2/aproj/app/tags/list",
    "POST /v2/aproj/other/blobs/uploads/",
]
--- more_headers
Content-Type: application/vnd.oci.image.manifest.v1+json
--- error_code eval
[202, 400, 403, 403]
--- response_body_like eval
["", "MANIFEST_INVALID", "DENIED", "DENIED"]



=== TEST 31: an authorizer answering anything else is a 500, logged
--- http_config eval
$::HttpConfig =~ s{registry_auth /_registry_auth;}{registry_auth /stub;}r
--- config eval
$::Config . '
    location = /stub {
        internal;
        return 302 /elsewhere;
    }
'
--- request
GET /v2/aproj/app/tags/list
--- error_code: 500
--- response_body_like: "code":"UNKNOWN"
--- error_log
registry: authorizer "/stub" answered 302
--- no_error_log
[crit]



=== TEST 32: an auth location that does not exist is a 500, logged
--- http_config eval
$::HttpConfig =~ s{registry_auth /_registry_auth;}{registry_auth /missing;}r
--- request
GET /v2/
--- error_code: 500
--- error_log
registry: authorizer "/missing" answered 404



=== TEST 33: registry_auth off: no check at all
--- http_config eval
$::HttpConfig =~ s{registry_auth /_registry_auth;}{registry_auth off;}r
--- request eval
["GET /v2/", "GET /openshift/token"]
--- error_code eval
[200, 200]
--- response_body eval
["{}", '{"token":"anonymous","access_token":"anonymous"}']



=== TEST 34: the default authorizer refuses questions it cannot read
--- config eval
$::Config =~ s{internal;\n\s*registry_authorizer}{registry_authorizer}r
--- request eval
["GET /_registry_auth", "GET /_registry_auth", "GET /_registry_auth", "POST /_registry_auth"]
--- more_headers eval
["X-Registry-Action: fly", "X-Registry-Action: pull\nX-Registry-Repository: bad", "X-Registry-Action: pull\nX-Registry-Repository: aproj/app", "X-Registry-Action: none"]
--- error_code eval
[400, 400, 401, 405]



=== TEST 35: the default authorizer answers the user and the projects
--- config eval
$::Config =~ s{internal;\n\s*registry_authorizer}{registry_authorizer}r
--- request eval
["GET /_registry_auth", "GET /_registry_auth", "GET /_registry_auth"]
--- more_headers eval
[
    "X-Registry-Action: list\n" . ::bearer('authbob'),
    "X-Registry-Action: list\n" . ::bearer('authreg'),
    "X-Registry-Action: push\nX-Registry-Repository: aproj/x\n" . ::bearer('authbob'),
]
--- error_code eval
[200, 200, 403]
--- response_headers eval
["X-Registry-User: authbob\nX-Registry-Projects: aproj,apub", "X-Registry-User: authreg\nX-Registry-Projects: *", "X-Registry-User: authbob\n!X-Registry-Projects"]



=== TEST 36: headers a client sends cannot change the question
--- request eval
["POST /v2/aother/app/blobs/uploads/", "GET /v2/aproj/app/manifests/latest"]
--- more_headers eval
[
    ::bearer('authdave') . "\nX-Registry-Action: none\nX-Registry-Repository: apub/app\nX-Registry-Project: apub\nX-Registry-User: authroot",
    "X-Registry-Action: none\nAuthorization: Bearer anonymous",
]
--- error_code eval
[403, 401]
