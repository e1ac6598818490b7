# Manifests: PUT, GET, HEAD, DELETE by tag and by digest, validation, and
# the referrers API.  Real nginx with the module, real Redis.
#
# Repositories: mtest/* (this file only).  The blobs that the manifests
# reference are made known to their repositories directly in Redis (the
# set repo:R:blobs that a committed upload fills): these tests are about
# manifests, not uploads.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::Nginx::Socket 'no_plan';
# the registry's configuration, as every registry test runs it
# (registry_blocks); the manifests as text; the suite's Redis
use Registry::Blobs qw(redis_cli registry_blocks);
use Registry::Manifests qw(d desc image index_of $OCI_MANIFEST $OCI_INDEX
    $OCI_CONFIG $OCI_LAYER $OCI_EMPTY $D_MANIFEST $D_LIST $D_CONFIG $D_LAYER);

# media types of this file's artifacts
our $SBOM         = 'application/vnd.example.sbom.v1';
our $SIG_CONFIG   = 'application/vnd.example.signature.config.v1+json';

# the blobs a repository holds, as a committed upload leaves them
sub seed_blobs {
    my ($repo, @blobs) = @_;
    redis_cli('SADD', "repo:$repo:blobs", map { d($_) } @blobs);
}

our $config  = '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}';
our $layer1  = "layer one\n" x 10;
our $layer2  = "layer two\n" x 20;
our $empty   = '{}';
our $sbom    = '{"spdxVersion":"SPDX-2.3"}';
our $sigcfg  = '{"signed":true}';
our $foreign = 'a blob that only mtest/other holds';
our $missing = 'a blob nobody pushed';

for my $repo (qw(mtest/img mtest/del1 mtest/del2 mtest/ref mtest/big)) {
    seed_blobs($repo, $config, $layer1, $layer2, $empty, $sbom, $sigcfg);
}
seed_blobs('mtest/other', $foreign);

our $oci = image($OCI_MANIFEST, $OCI_CONFIG, $config,
    [$OCI_LAYER, $layer1], [$OCI_LAYER, $layer2]);
our $docker = image($D_MANIFEST, $D_CONFIG, $config, [$D_LAYER, $layer1]);
our $nolayers = image($OCI_MANIFEST, $OCI_CONFIG, $config);
our $list = index_of($D_LIST,
    [$D_MANIFEST, $docker, ',"platform":{"architecture":"amd64","os":"linux"}']);
our $index = index_of($OCI_INDEX, [$OCI_MANIFEST, $oci], [$OCI_MANIFEST, $nolayers]);

# artifacts whose subject is $oci: one with artifactType and annotations,
# one whose artifact type is its config's media type
our $sbom_artifact = qq({"schemaVersion":2,"mediaType":"$OCI_MANIFEST",)
    . qq("artifactType":"$SBOM","config":) . desc($OCI_EMPTY, $empty)
    . ',"layers":[' . desc("$SBOM+json", $sbom) . '],"subject":'
    . desc($OCI_MANIFEST, $oci)
    . ',"annotations":{"org.opencontainers.image.created":"2024-01-01T00:00:00Z"}}';
our $sig_artifact = qq({"schemaVersion":2,"mediaType":"$OCI_MANIFEST","config":)
    . desc($SIG_CONFIG, $sigcfg) . ',"layers":[],"subject":'
    . desc($OCI_MANIFEST, $oci) . '}';

# what the referrers API lists for each of them, ordered by digest
our %referrer = (
    d($sbom_artifact) => qq({"mediaType":"$OCI_MANIFEST","digest":"@{[d($sbom_artifact)]}",)
        . qq("size":@{[length $sbom_artifact]},"artifactType":"$SBOM",)
        . '"annotations":{"org.opencontainers.image.created":"2024-01-01T00:00:00Z"}}',
    d($sig_artifact) => qq({"mediaType":"$OCI_MANIFEST","digest":"@{[d($sig_artifact)]}",)
        . qq("size":@{[length $sig_artifact]},"artifactType":"$SIG_CONFIG"}),
);

sub referrers {
    return qq({"schemaVersion":2,"mediaType":"$OCI_INDEX","manifests":[)
        . join(',', map { $referrer{$_} } sort @_) . ']}';
}

# a manifest of exactly 4 MiB (accepted) and bodies just over it
our $MiB4 = 4 * 1024 * 1024;
our $at_limit = do {
    my $head = qq({"schemaVersion":2,"mediaType":"$OCI_MANIFEST","config":)
        . desc($OCI_CONFIG, $config) . ',"layers":[],"annotations":{"pad":"';
    my $tail = '"}}';
    $head . ('x' x ($MiB4 - length($head) - length($tail))) . $tail;
};
our $over_limit = $at_limit . ' ';

# blocks without their own config get the registry's; no default root
# location; blocks in file order
registry_blocks();
run_tests();

__DATA__

=== TEST 1: OCI image manifest: PUT by tag, GET and HEAD by tag and by digest
--- request eval
[
    "PUT /v2/mtest/img/manifests/oci\n$::oci",
    "GET /v2/mtest/img/manifests/oci",
    "HEAD /v2/mtest/img/manifests/oci",
    "GET /v2/mtest/img/manifests/" . ::d($::oci),
    "HEAD /v2/mtest/img/manifests/" . ::d($::oci),
]
--- more_headers eval
["Content-Type: $::OCI_MANIFEST", "", "", "", ""]
--- error_code eval
[201, 200, 200, 200, 200]
--- response_headers eval
[
    "Location: /v2/mtest/img/manifests/" . ::d($::oci)
    . "\nDocker-Content-Digest: " . ::d($::oci)
    . "\nDocker-Distribution-API-Version: registry/2.0\n!OCI-Subject",
    ("Content-Type: $::OCI_MANIFEST\nDocker-Content-Digest: " . ::d($::oci)
     . "\nContent-Length: " . length($::oci)) x 4
]
--- response_body eval
["", $::oci, "", $::oci, ""]



=== TEST 2: Docker v2 manifest: PUT by digest, then by tag; GET, HEAD
--- request eval
[
    "PUT /v2/mtest/img/manifests/" . ::d($::docker) . "\n$::docker",
    "GET /v2/mtest/img/manifests/" . ::d($::docker),
    "HEAD /v2/mtest/img/manifests/" . ::d($::docker),
    "PUT /v2/mtest/img/manifests/docker\n$::docker",
    "GET /v2/mtest/img/manifests/docker",
    "HEAD /v2/mtest/img/manifests/docker",
]
--- more_headers eval
["Content-Type: $::D_MANIFEST", "", "", "Content-Type: $::D_MANIFEST", "", ""]
--- error_code eval
[201, 200, 200, 201, 200, 200]
--- response_headers eval
[
    "Location: /v2/mtest/img/manifests/" . ::d($::docker)
    . "\nDocker-Content-Digest: " . ::d($::docker),
    ("Content-Type: $::D_MANIFEST\nDocker-Content-Digest: " . ::d($::docker)
     . "\nContent-Length: " . length($::docker)) x 2,
    "Location: /v2/mtest/img/manifests/" . ::d($::docker),
    ("Content-Type: $::D_MANIFEST\nDocker-Content-Digest: " . ::d($::docker)
     . "\nContent-Length: " . length($::docker)) x 2,
]
--- response_body eval
["", $::docker, "", "", $::docker, ""]



=== TEST 3: Docker manifest list: its children must be in the repository
--- request eval
[
    "PUT /v2/mtest/img/manifests/" . ::d($::docker) . "\n$::docker",
    "PUT /v2/mtest/img/manifests/list\n$::list",
    "GET /v2/mtest/img/manifests/list",
    "HEAD /v2/mtest/img/manifests/" . ::d($::list),
]
--- more_headers eval
["Content-Type: $::D_MANIFEST", "Content-Type: $::D_LIST", "", ""]
--- error_code eval
[201, 201, 200, 200]
--- response_headers eval
[
    "",
    "Docker-Content-Digest: " . ::d($::list),
    ("Content-Type: $::D_LIST\nDocker-Content-Digest: " . ::d($::list)
     . "\nContent-Length: " . length($::list)) x 2,
]
--- response_body eval
["", "", $::list, ""]



=== TEST 4: OCI index: PUT by digest, GET and HEAD
--- request eval
[
    "PUT /v2/mtest/img/manifests/oci\n$::oci",
    "PUT /v2/mtest/img/manifests/" . ::d($::nolayers) . "\n$::nolayers",
    "PUT /v2/mtest/img/manifests/" . ::d($::index) . "\n$::index",
    "GET /v2/mtest/img/manifests/" . ::d($::index),
    "HEAD /v2/mtest/img/manifests/" . ::d($::index),
]
--- more_headers eval
["Content-Type: $::OCI_MANIFEST", "Content-Type: $::OCI_MANIFEST",
 "Content-Type: $::OCI_INDEX", "", ""]
--- error_code eval
[201, 201, 201, 200, 200]
--- response_headers eval
[
    "", "",
    "Location: /v2/mtest/img/manifests/" . ::d($::index),
    ("Content-Type: $::OCI_INDEX\nDocker-Content-Digest: " . ::d($::index)
     . "\nContent-Length: " . length($::index)) x 2,
]
--- response_body eval
["", "", "", $::index, ""]



=== TEST 5: a manifest with no layers
--- request eval
[
    "PUT /v2/mtest/img/manifests/nolayers\n$::nolayers",
    "GET /v2/mtest/img/manifests/nolayers",
]
--- more_headers eval
["Content-Type: $::OCI_MANIFEST", ""]
--- error_code eval
[201, 200]
--- response_headers eval
["Docker-Content-Digest: " . ::d($::nolayers),
 "Docker-Content-Digest: " . ::d($::nolayers) . "\nContent-Type: $::OCI_MANIFEST"]
--- response_body eval
["", $::nolayers]



=== TEST 6: the media type from the body alone, or a Content-Type with parameters
--- request eval
[
    "PUT /v2/mtest/img/manifests/bodytype\n$::docker",
    "GET /v2/mtest/img/manifests/bodytype",
    "PUT /v2/mtest/img/manifests/params\n$::oci",
    "GET /v2/mtest/img/manifests/params",
]
--- more_headers eval
["", "", "Content-Type: $::OCI_MANIFEST; charset=utf-8", ""]
--- error_code eval
[201, 200, 201, 200]
--- response_headers eval
["", "Content-Type: $::D_MANIFEST", "", "Content-Type: $::OCI_MANIFEST"]
--- response_body eval
["", $::docker, "", $::oci]



=== TEST 7: a tag moves to the manifest pushed last
--- request eval
[
    "PUT /v2/mtest/img/manifests/moving\n$::oci",
    "PUT /v2/mtest/img/manifests/moving\n$::nolayers",
    "GET /v2/mtest/img/manifests/moving",
    "GET /v2/mtest/img/manifests/" . ::d($::oci),
]
--- more_headers: Content-Type: application/vnd.oci.image.manifest.v1+json
--- error_code eval
[201, 201, 200, 200]
--- response_headers eval
["", "", "Docker-Content-Digest: " . ::d($::nolayers),
 "Docker-Content-Digest: " . ::d($::oci)]
--- response_body eval
["", "", $::nolayers, $::oci]



=== TEST 8: artifacts with a subject answer OCI-Subject; the referrers API lists them
--- request eval
[
    "PUT /v2/mtest/ref/manifests/v1\n$::oci",
    "PUT /v2/mtest/ref/manifests/" . ::d($::sbom_artifact) . "\n$::sbom_artifact",
    "PUT /v2/mtest/ref/manifests/sig\n$::sig_artifact",
    "GET /v2/mtest/ref/referrers/" . ::d($::oci),
    "GET /v2/mtest/ref/referrers/" . ::d($::oci) . "?artifactType=$::SBOM",
    "GET /v2/mtest/ref/referrers/" . ::d($::oci) . "?artifactType=application%2Fvnd.example.signature.config.v1%2Bjson",
    "GET /v2/mtest/ref/referrers/" . ::d($::oci) . "?artifactType=application/none",
    "GET /v2/mtest/ref/manifests/" . ::d($::sbom_artifact),
]
--- more_headers eval
[("Content-Type: $::OCI_MANIFEST") x 3, "", "", "", "", ""]
--- error_code eval
[201, 201, 201, 200, 200, 200, 200, 200]
--- response_headers eval
[
    "!OCI-Subject",
    "OCI-Subject: " . ::d($::oci) . "\nDocker-Content-Digest: " . ::d($::sbom_artifact),
    "OCI-Subject: " . ::d($::oci),
    "Content-Type: $::OCI_INDEX\n!OCI-Filters-Applied",
    "Content-Type: $::OCI_INDEX\nOCI-Filters-Applied: artifactType",
    "Content-Type: $::OCI_INDEX\nOCI-Filters-Applied: artifactType",
    "Content-Type: $::OCI_INDEX\nOCI-Filters-Applied: artifactType",
    "Content-Type: $::OCI_MANIFEST",
]
--- response_body eval
[
    "", "", "",
    ::referrers(::d($::sbom_artifact), ::d($::sig_artifact)),
    ::referrers(::d($::sbom_artifact)),
    ::referrers(::d($::sig_artifact)),
    ::referrers(),
    $::sbom_artifact,
]



=== TEST 9: referrers: an empty index for an unknown digest, 400 for a bad one
--- request eval
[
    "GET /v2/mtest/ref/referrers/sha256:" . ('0' x 64),
    "GET /v2/mtest/nosuchrepo/referrers/sha256:" . ('1' x 64),
    "GET /v2/mtest/ref/referrers/sha256:abc",
    "GET /v2/mtest/ref/referrers/sha256:" . ('A' x 64),
    "GET /v2/mtest/ref/referrers/notadigest",
]
--- error_code eval
[200, 200, 400, 400, 400]
--- response_headers eval
["Content-Type: $::OCI_INDEX", "Content-Type: $::OCI_INDEX", "", "", ""]
--- response_body eval
[::referrers(), ::referrers(), qr/"DIGEST_INVALID"/, qr/"DIGEST_INVALID"/,
 qr/"DIGEST_INVALID"/]



=== TEST 10: invalid JSON and duplicate keys are MANIFEST_INVALID
--- request eval
[
    "PUT /v2/mtest/img/manifests/bad\n{\"schemaVersion\":2,",
    "PUT /v2/mtest/img/manifests/bad\n" . substr($::oci, 0, -1)
        . ",\"schemaVersion\":2}",
    "PUT /v2/mtest/img/manifests/bad\n[1,2]",
    "GET /v2/mtest/img/manifests/bad",
]
--- more_headers eval
[("Content-Type: $::OCI_MANIFEST") x 3, ""]
--- error_code eval
[400, 400, 400, 404]
--- response_body eval
[
    qr/^\{"errors":\[\{"code":"MANIFEST_INVALID","message":"manifest is not valid JSON"\}\]\}$/,
    qr/"MANIFEST_INVALID".*duplicate key/,
    qr/"MANIFEST_INVALID".*not a JSON object/,
    qr/"MANIFEST_UNKNOWN"/,
]



=== TEST 11: wrong, missing, unknown and schema 1 media types
--- request eval
[
    "PUT /v2/mtest/img/manifests/bad\n$::docker",
    "PUT /v2/mtest/img/manifests/bad\n" . ::image('', $::OCI_CONFIG, $::config) =~ s/"mediaType":"",//r,
    "PUT /v2/mtest/img/manifests/bad\n" . ::image('', $::OCI_CONFIG, $::config) =~ s/"mediaType":"",//r,
    "PUT /v2/mtest/img/manifests/bad\n" . ::image('application/vnd.example+json', $::OCI_CONFIG, $::config),
    "PUT /v2/mtest/img/manifests/bad\n{\"schemaVersion\":1,\"name\":\"mtest/img\",\"tag\":\"bad\",\"fsLayers\":[]}",
    "PUT /v2/mtest/img/manifests/bad\n{\"schemaVersion\":1,\"name\":\"mtest/img\",\"tag\":\"bad\",\"fsLayers\":[]}",
    "PUT /v2/mtest/img/manifests/bad\n" . ::image('', $::OCI_CONFIG, $::config) =~ s/"mediaType":""/"mediaType":7/r,
    "GET /v2/mtest/img/manifests/bad",
]
--- more_headers eval
[
    "Content-Type: $::OCI_MANIFEST",
    "",
    "Content-Type: application/json",
    "",
    "Content-Type: application/vnd.docker.distribution.manifest.v1+prettyjws",
    "",
    "",
    "",
]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 404]
--- response_body eval
[
    qr/"MANIFEST_INVALID".*Content-Type does not match/,
    qr/"MANIFEST_INVALID".*media type is missing/,
    qr/"MANIFEST_INVALID".*unsupported manifest media type/,
    qr/"MANIFEST_INVALID".*unsupported manifest media type/,
    qr/"MANIFEST_INVALID".*schema 1/,
    qr/"MANIFEST_INVALID".*schema 1/,
    qr/"MANIFEST_INVALID".*mediaType is not a string/,
    qr/"MANIFEST_UNKNOWN"/,
]



=== TEST 12: the structure: schemaVersion, config, layers, descriptors, manifests
--- request eval
[
    "PUT /v2/mtest/img/manifests/bad\n" . $::oci =~ s/"schemaVersion":2/"schemaVersion":1/r,
    "PUT /v2/mtest/img/manifests/bad\n" . $::oci =~ s/"schemaVersion":2,//r,
    "PUT /v2/mtest/img/manifests/bad\n" . $::oci =~ s/"config":\{[^}]*\},//r,
    "PUT /v2/mtest/img/manifests/bad\n" . $::oci =~ s/,"layers":\[.*\]//r,
    "PUT /v2/mtest/img/manifests/bad\n" . $::oci =~ s/,"size":\d+\}\]\}$/}]}/r,
    "PUT /v2/mtest/img/manifests/bad\n" . $::oci =~ s/,"size":(\d+)\}\]\}$/,"size":"$1"}]}/r,
    "PUT /v2/mtest/img/manifests/bad\n" . $::oci =~ s/sha256:[0-9a-f]{64}"/sha256:abc"/r,
    "PUT /v2/mtest/img/manifests/bad\n" . $::oci =~ s/"layers":\[[^]]*\]/"layers":{}/r,
    "PUT /v2/mtest/img/manifests/bad\n{\"schemaVersion\":2,\"mediaType\":\"$::OCI_INDEX\"}",
    "PUT /v2/mtest/img/manifests/bad\n" . $::index =~ s/"manifests":\[/"manifests":[7,/r,
    "PUT /v2/mtest/img/manifests/bad\n" . substr($::oci, 0, -1) . ',"subject":{"digest":"sha256:x"}}',
    "PUT /v2/mtest/img/manifests/bad\n" . substr($::oci, 0, -1) . ',"annotations":[]}',
    "PUT /v2/mtest/img/manifests/bad\n" . substr($::oci, 0, -1) . ',"artifactType":1}',
]
--- error_code eval
[(400) x 13]
--- response_body eval
[
    qr/"MANIFEST_INVALID".*schemaVersion must be 2/,
    qr/"MANIFEST_INVALID".*schemaVersion must be 2/,
    qr/"MANIFEST_INVALID".*config/,
    qr/"MANIFEST_INVALID".*no layers/,
    qr/"MANIFEST_INVALID".*size/,
    qr/"MANIFEST_INVALID".*size/,
    qr/"MANIFEST_INVALID".*digest/,
    qr/"MANIFEST_INVALID".*no layers/,
    qr/"MANIFEST_INVALID".*no manifests/,
    qr/"MANIFEST_INVALID".*not an object/,
    qr/"MANIFEST_INVALID".*subject/,
    qr/"MANIFEST_INVALID".*annotations/,
    qr/"MANIFEST_INVALID".*artifactType/,
]



=== TEST 13: exactly 4 MiB is accepted; more is 413, by Content-Length at once
--- request eval
[
    "PUT /v2/mtest/big/manifests/limit\n$::at_limit",
    "GET /v2/mtest/big/manifests/limit",
    "HEAD /v2/mtest/big/manifests/limit",
    "PUT /v2/mtest/big/manifests/over\n$::over_limit",
    "GET /v2/mtest/big/manifests/over",
]
--- more_headers eval
[
    "Content-Type: $::OCI_MANIFEST",
    "",
    "",
    "Content-Type: $::OCI_MANIFEST\nContent-Length: " . length($::over_limit),
    "",
]
--- error_code eval
[201, 200, 200, 413, 404]
--- response_headers eval
["", "Content-Length: $::MiB4", "Content-Length: $::MiB4", "", ""]
--- response_body eval
["", $::at_limit, "", qr/^\{"errors":\[\{"code":"SIZE_INVALID"/, qr/"MANIFEST_UNKNOWN"/]
--- timeout: 10



=== TEST 14: over 4 MiB without a Content-Length (chunked) is 413 after reading
--- raw_request eval
"PUT /v2/mtest/big/manifests/chunked HTTP/1.1\r
Host: localhost\r
Connection: close\r
Content-Type: $::OCI_MANIFEST\r
Transfer-Encoding: chunked\r
\r
" . CORE::join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) }
    substr($::over_limit, 0, 3_000_000), substr($::over_limit, 3_000_000))
. "0\r\n\r\n"
--- error_code: 413
--- response_body_like: ^\{"errors":\[\{"code":"SIZE_INVALID"
--- timeout: 10



=== TEST 15: unknown blobs and child manifests are MANIFEST_BLOB_UNKNOWN; nothing is stored
--- request eval
[
    "PUT /v2/mtest/img/manifests/unknown\n" . ::image($::OCI_MANIFEST, $::OCI_CONFIG,
        $::config, [$::OCI_LAYER, $::layer1], [$::OCI_LAYER, $::missing]),
    "PUT /v2/mtest/img/manifests/unknown\n" . ::image($::OCI_MANIFEST, $::OCI_CONFIG,
        $::missing),
    "PUT /v2/mtest/img/manifests/unknown\n" . ::image($::OCI_MANIFEST, $::OCI_CONFIG,
        $::config, [$::OCI_LAYER, $::foreign]),
    "PUT /v2/mtest/img/manifests/unknown\n" . ::index_of($::OCI_INDEX,
        [$::OCI_MANIFEST, $::oci], [$::OCI_MANIFEST, $::missing]),
    "GET /v2/mtest/img/manifests/unknown",
]
--- error_code eval
[400, 400, 400, 400, 404]
--- response_body eval
[
    qr/"code":"MANIFEST_BLOB_UNKNOWN".*"detail":"\Q@{[::d($::missing)]}\E"/,
    qr/"code":"MANIFEST_BLOB_UNKNOWN".*"detail":"\Q@{[::d($::missing)]}\E"/,
    qr/"code":"MANIFEST_BLOB_UNKNOWN".*"detail":"\Q@{[::d($::foreign)]}\E"/,
    qr/"code":"MANIFEST_BLOB_UNKNOWN".*"detail":"\Q@{[::d($::missing)]}\E"/,
    qr/"MANIFEST_UNKNOWN"/,
]



=== TEST 16: the digest in the URL must be the manifest's; references are checked (a read of a malformed one finds nothing: 404)
--- request eval
[
    "PUT /v2/mtest/img/manifests/" . ::d($::docker) . "\n$::oci",
    "PUT /v2/mtest/img/manifests/sha256:abc\n$::oci",
    "PUT /v2/mtest/img/manifests/sha512:" . ('a' x 128) . "\n$::oci",
    "PUT /v2/mtest/img/manifests/-bad\n$::oci",
    "PUT /v2/mtest/img/manifests/" . ('t' x 129) . "\n$::oci",
    "GET /v2/mtest/img/manifests/.bad",
    "GET /v2/mtest/img/manifests/sha256:" . ('g' x 64),
    "DELETE /v2/mtest/img/manifests/sha256:abc",
]
--- error_code eval
[400, 400, 400, 400, 400, 404, 404, 400]
--- response_body eval
[
    qr/"DIGEST_INVALID".*does not match/,
    qr/"DIGEST_INVALID"/,
    qr/"UNSUPPORTED"/,
    qr/"MANIFEST_INVALID".*invalid tag/,
    qr/"MANIFEST_INVALID".*invalid tag/,
    qr/"MANIFEST_UNKNOWN"/,
    qr/"MANIFEST_UNKNOWN"/,
    qr/"DIGEST_INVALID"/,
]



=== TEST 17: unknown manifests: 404 MANIFEST_UNKNOWN, also where another repository holds it
--- request eval
[
    "PUT /v2/mtest/img/manifests/oci\n$::oci",
    "GET /v2/mtest/img/manifests/nosuchtag",
    "HEAD /v2/mtest/img/manifests/nosuchtag",
    "GET /v2/mtest/img/manifests/sha256:" . ('0' x 64),
    "GET /v2/mtest/other/manifests/" . ::d($::oci),
    "GET /v2/mtest/other/manifests/oci",
    "GET /v2/mtest/nosuchrepo/manifests/latest",
]
--- more_headers eval
["Content-Type: $::OCI_MANIFEST", ("") x 6]
--- error_code eval
[201, 404, 404, 404, 404, 404, 404]
--- response_body eval
["", qr/"MANIFEST_UNKNOWN"/, "", qr/"MANIFEST_UNKNOWN"/, qr/"MANIFEST_UNKNOWN"/,
 qr/"MANIFEST_UNKNOWN"/, qr/"MANIFEST_UNKNOWN"/]



=== TEST 18: DELETE by tag removes only the tag
--- request eval
[
    "PUT /v2/mtest/del1/manifests/a\n$::oci",
    "PUT /v2/mtest/del1/manifests/b\n$::oci",
    "DELETE /v2/mtest/del1/manifests/a",
    "GET /v2/mtest/del1/manifests/a",
    "GET /v2/mtest/del1/manifests/b",
    "GET /v2/mtest/del1/manifests/" . ::d($::oci),
    "GET /v2/mtest/del1/tags/list",
    "DELETE /v2/mtest/del1/manifests/a",
    "DELETE /v2/mtest/del1/manifests/nosuchtag",
]
--- more_headers eval
["Content-Type: $::OCI_MANIFEST", ("") x 8]
--- error_code eval
[201, 201, 202, 404, 200, 200, 200, 404, 404]
--- response_body eval
["", "", "", qr/"MANIFEST_UNKNOWN"/, $::oci, $::oci,
 '{"name":"mtest/del1","tags":["b"]}', qr/"MANIFEST_UNKNOWN"/,
 qr/"MANIFEST_UNKNOWN"/]



=== TEST 19: DELETE by digest removes the manifest, its tags and its referrer entry
--- request eval
[
    "PUT /v2/mtest/img/manifests/oci\n$::oci",
    "PUT /v2/mtest/del2/manifests/a\n$::oci",
    "PUT /v2/mtest/del2/manifests/b\n$::oci",
    "PUT /v2/mtest/del2/manifests/other\n$::nolayers",
    "PUT /v2/mtest/del2/manifests/sbom\n$::sbom_artifact",
    "PUT /v2/mtest/del2/manifests/sig\n$::sig_artifact",
    "DELETE /v2/mtest/del2/manifests/" . ::d($::oci),
    "GET /v2/mtest/del2/manifests/a",
    "HEAD /v2/mtest/del2/manifests/b",
    "GET /v2/mtest/del2/manifests/" . ::d($::oci),
    "GET /v2/mtest/del2/tags/list",
    "DELETE /v2/mtest/del2/manifests/" . ::d($::sbom_artifact),
    "GET /v2/mtest/del2/referrers/" . ::d($::oci),
    "DELETE /v2/mtest/del2/manifests/" . ::d($::oci),
    "GET /v2/mtest/img/manifests/oci",
]
--- more_headers eval
["Content-Type: $::OCI_MANIFEST", ("") x 14]
--- error_code eval
[201, 201, 201, 201, 201, 201, 202, 404, 404, 404, 200, 202, 200, 404, 200]
--- response_body eval
["", "", "", "", "", "", "", qr/"MANIFEST_UNKNOWN"/, "", qr/"MANIFEST_UNKNOWN"/,
 '{"name":"mtest/del2","tags":["other","sbom","sig"]}', "",
 ::referrers(::d($::sig_artifact)), qr/"MANIFEST_UNKNOWN"/, $::oci]
