# Tags list and catalog: lexical order, n and last paging, the Link header.
# Real nginx with the module, real Redis.
#
# Repositories: ttest/* and zzcatalog/* (this file only; zzcatalog sorts
# after what other test files create, so its catalog pages are known).
# The blob the manifests reference is made known to the repositories
# directly in Redis (the set repo:R:blobs that a committed upload fills).
# Blocks run in order: TEST 1 pushes the tags the others list.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::Nginx::Socket 'no_plan';
# the registry's configuration, as every registry test runs it
# (registry_blocks); the manifests as text; the suite's Redis
use Registry::Blobs qw(redis_cli registry_blocks);
use Registry::Manifests qw(d image $OCI_MANIFEST $OCI_CONFIG);

our $config = '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}';
our $other  = '{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}';

for my $repo (qw(ttest/app ttest/notags ttest/del zzcatalog/a zzcatalog/b zzcatalog/c)) {
    redis_cli('SADD', "repo:$repo:blobs", d($config), d($other));
}

# images without layers
our $m1 = image($OCI_MANIFEST, $OCI_CONFIG, $config);
our $m2 = image($OCI_MANIFEST, $OCI_CONFIG, $other);

# pushed in this order; listed in byte order
our @pushed = qw(latest 1.0 beta 2.0 Zeta _x alpha 1.1);
our @sorted = sort @pushed;    # 1.0 1.1 2.0 Zeta _x alpha beta latest

sub tags_json {
    my ($repo, @tags) = @_;
    return qq({"name":"$repo","tags":[) . join(',', map { qq("$_") } @tags) . ']}';
}

sub repos_json {
    return '{"repositories":[' . join(',', map { qq("$_") } @_) . ']}';
}

sub link_to {
    my ($path, $n, $last) = @_;
    return qq(Link: <$path?n=$n&last=$last>; rel="next");
}

# blocks without their own config get the registry's; no default root
# location; blocks in file order
registry_blocks();
run_tests();

__DATA__

=== TEST 1: push the tags; the list is in lexical (byte) order
--- request eval
[
    (map { "PUT /v2/ttest/app/manifests/$_\n$::m1" } @::pushed),
    "PUT /v2/ttest/app/manifests/1.1\n$::m2",
    "GET /v2/ttest/app/tags/list",
    "HEAD /v2/ttest/app/tags/list",
]
--- more_headers eval
"Content-Type: $::OCI_MANIFEST"
--- error_code eval
[(201) x 9, 200, 200]
--- response_headers eval
[("") x 9, "Content-Type: application/json\n!Link",
 "Content-Length: " . length(::tags_json('ttest/app', @::sorted))]
--- response_body eval
[("") x 9, ::tags_json('ttest/app', @::sorted), ""]



=== TEST 2: n pages through the tags, with a Link to each next page
--- request eval
[
    "GET /v2/ttest/app/tags/list?n=3",
    "GET /v2/ttest/app/tags/list?n=3&last=2.0",
    "GET /v2/ttest/app/tags/list?n=3&last=alpha",
]
--- response_headers eval
[
    ::link_to('/v2/ttest/app/tags/list', 3, '2.0'),
    ::link_to('/v2/ttest/app/tags/list', 3, 'alpha'),
    "!Link",
]
--- response_body eval
[
    ::tags_json('ttest/app', @::sorted[0 .. 2]),
    ::tags_json('ttest/app', @::sorted[3 .. 5]),
    ::tags_json('ttest/app', @::sorted[6 .. 7]),
]



=== TEST 3: last is exclusive, alone or with n
--- request eval
[
    "GET /v2/ttest/app/tags/list?last=alpha",
    "GET /v2/ttest/app/tags/list?last=Zeta",
    "GET /v2/ttest/app/tags/list?last=Z",
    "GET /v2/ttest/app/tags/list?last=0",
    "GET /v2/ttest/app/tags/list?last=latest",
    "GET /v2/ttest/app/tags/list?last=zzz&n=5",
    "GET /v2/ttest/app/tags/list?n=1&last=1.0",
]
--- response_headers eval
[("!Link") x 6, ::link_to('/v2/ttest/app/tags/list', 1, '1.1')]
--- response_body eval
[
    ::tags_json('ttest/app', qw(beta latest)),
    ::tags_json('ttest/app', qw(_x alpha beta latest)),
    ::tags_json('ttest/app', qw(Zeta _x alpha beta latest)),
    ::tags_json('ttest/app', @::sorted),
    ::tags_json('ttest/app'),
    ::tags_json('ttest/app'),
    ::tags_json('ttest/app', '1.1'),
]



=== TEST 4: n=0 is an empty list; n at or past the end has no Link
--- request eval
[
    "GET /v2/ttest/app/tags/list?n=0",
    "GET /v2/ttest/app/tags/list?n=0&last=1.0",
    "GET /v2/ttest/app/tags/list?n=8",
    "GET /v2/ttest/app/tags/list?n=100",
    "GET /v2/ttest/app/tags/list?n=7",
    "GET /v2/ttest/app/tags/list?n=2&last=beta",
]
--- response_headers eval
[("!Link") x 4, ::link_to('/v2/ttest/app/tags/list', 7, 'beta'), "!Link"]
--- response_body eval
[
    ::tags_json('ttest/app'),
    ::tags_json('ttest/app'),
    ::tags_json('ttest/app', @::sorted),
    ::tags_json('ttest/app', @::sorted),
    ::tags_json('ttest/app', @::sorted[0 .. 6]),
    ::tags_json('ttest/app', 'latest'),
]



=== TEST 5: a bad n is 400
--- request eval
[
    "GET /v2/ttest/app/tags/list?n=abc",
    "GET /v2/ttest/app/tags/list?n=-1",
    "GET /v2/ttest/app/tags/list?n=",
    "GET /v2/ttest/app/tags/list?n=1.5",
    "GET /v2/_catalog?n=x",
]
--- error_code eval
[(400) x 5]
--- response_body_like eval
[('^\{"errors":\[\{"code":"UNSUPPORTED","message":"n must be a non-negative integer"\}\]\}$') x 5]



=== TEST 6: unknown repository 404, malformed name 400, no tags an empty list
--- request eval
[
    "GET /v2/ttest/nosuchrepo/tags/list",
    "GET /v2/ttest/nosuchrepo/tags/list?n=0",
    "GET /v2/TTest/App/tags/list",
    "PUT /v2/ttest/notags/manifests/" . ::d($::m1) . "\n$::m1",
    "GET /v2/ttest/notags/tags/list",
]
--- more_headers eval
["", "", "", "Content-Type: $::OCI_MANIFEST", ""]
--- error_code eval
[404, 404, 400, 201, 200]
--- response_body eval
[
    qr/^\{"errors":\[\{"code":"NAME_UNKNOWN"/,
    qr/^\{"errors":\[\{"code":"NAME_UNKNOWN"/,
    qr/"NAME_INVALID"/,
    "",
    ::tags_json('ttest/notags'),
]



=== TEST 7: deleted tags leave the list
--- request eval
[
    "PUT /v2/ttest/del/manifests/one\n$::m1",
    "PUT /v2/ttest/del/manifests/two\n$::m1",
    "PUT /v2/ttest/del/manifests/three\n$::m2",
    "DELETE /v2/ttest/del/manifests/two",
    "GET /v2/ttest/del/tags/list",
    "DELETE /v2/ttest/del/manifests/" . ::d($::m1),
    "GET /v2/ttest/del/tags/list",
]
--- more_headers eval
"Content-Type: $::OCI_MANIFEST"
--- error_code eval
[201, 201, 201, 202, 200, 202, 200]
--- response_body eval
["", "", "", "", ::tags_json('ttest/del', qw(one three)), "",
 ::tags_json('ttest/del', 'three')]



=== TEST 8: the catalog lists repositories in order, paged the same way
--- request eval
[
    "PUT /v2/zzcatalog/c/manifests/v1\n$::m1",
    "PUT /v2/zzcatalog/a/manifests/v1\n$::m1",
    "PUT /v2/zzcatalog/b/manifests/" . ::d($::m1) . "\n$::m1",
    "GET /v2/_catalog",
    "GET /v2/_catalog?n=2&last=zzcatalog",
    "GET /v2/_catalog?n=2&last=zzcatalog/b",
    "GET /v2/_catalog?last=zzcatalog/a",
    "GET /v2/_catalog?n=0",
    "GET /v2/_catalog?n=1&last=ttest/app",
    "HEAD /v2/_catalog?n=1&last=ttest/app",
]
--- more_headers eval
"Content-Type: $::OCI_MANIFEST"
--- error_code eval
[201, 201, 201, 200, 200, 200, 200, 200, 200, 200]
--- response_headers eval
[
    "", "", "",
    "Content-Type: application/json\n!Link",
    ::link_to('/v2/_catalog', 2, 'zzcatalog/b'),
    "!Link",
    "!Link",
    "!Link",
    ::link_to('/v2/_catalog', 1, 'ttest/del'),
    ::link_to('/v2/_catalog', 1, 'ttest/del'),
]
--- response_body eval
[
    "", "", "",
    qr{"ttest/app","ttest/del","ttest/notags",.*"zzcatalog/a","zzcatalog/b","zzcatalog/c"\]\}$},
    ::repos_json(qw(zzcatalog/a zzcatalog/b)),
    ::repos_json(qw(zzcatalog/c)),
    ::repos_json(qw(zzcatalog/b zzcatalog/c)),
    ::repos_json(),
    ::repos_json('ttest/del'),
    "",
]
