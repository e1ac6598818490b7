package Registry::Blobs;

# Fixtures of the registry tests: the registry's configuration as the
# tests run it (t/blobs.t, t/uploads.t, t/manifests.t, t/tags.t, t/e2e*.t
# ...), and direct access to the test Redis and to the test bucket, to
# check what the registry stored (or did not).
#
#   $HttpConfig, $Config     http{} and server{} parts of a registry with
#                            auth off and the S3 proxy location set up as
#                            s3.c recommends
#   d($bytes)                "sha256:<hex>" (Registry::Manifests')
#   random_bytes($n)         $n bytes that no other run pushes
#   redis_cli(ARGS...)       redis-cli against the test Redis; stdout
#                            (Registry::Harness')
#   s3(METHOD, PATH_QUERY, [body => BYTES])
#                            a SigV4-signed request to the test RGW
#                            (PATH_QUERY after the bucket: "data/x",
#                            "?list-type=2&prefix=..."); returns
#                            {status, headers, body}
#   s3_objects($prefix)      [{key, size, etag}] of the bucket under
#                            $prefix (every page)
#   s3_uploads($prefix)      keys with an unfinished multipart upload
#   s3_delete($key)          DeleteObject
#   blob_key($digest)        the S3 key of a committed blob (from Redis)
#   curl(ARGS...)            runs curl, returns (exit status, stdout)
#   pipelined($port, $raw)   sends raw requests on one connection, reads
#                            until the server closes it; the raw answers
#   registry_blocks(%o)      in a block file (Test::Nginx::Socket), before
#                            run_tests: a block without its own
#                            http_config, config or no_error_log gets
#                            $HttpConfig, $Config, "[error] [crit] [alert]"
#                            (or what %o says); no default root location
#                            (the configs declare `location /`); blocks in
#                            file order

use strict;
use warnings;
use Exporter qw(import);
use Digest::SHA qw(sha256_hex);
use Registry::Harness qw(redis_cli);
use Registry::Manifests qw(d);

our @EXPORT_OK = qw($HttpConfig $Config d random_bytes redis_cli s3
    s3_objects s3_uploads s3_delete blob_key curl uri_escape pipelined
    own_bucket registry_blocks);

our $HttpConfig = <<'_EOC_';
    registry_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    registry_s3_endpoint http://127.0.0.1:$TEST_NGINX_S3_PORT;
    registry_s3_bucket $TEST_NGINX_S3_BUCKET;
    registry_s3_access_key $TEST_NGINX_S3_ACCESS_KEY;
    registry_s3_secret_key $TEST_NGINX_S3_SECRET_KEY;
    registry_s3_location /_registry_s3/;
_EOC_

# (the harness sets client_max_body_size in server{}: blobs need more)
our $Config = <<'_EOC_';
    location / {
        registry;
        client_max_body_size 0;
    }

    location /_registry_s3/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_S3_PORT/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_buffering off;
        proxy_next_upstream off;
        proxy_intercept_errors off;
        client_max_body_size 0;
    }
_EOC_

sub random_bytes {
    my ($n) = @_;
    open my $fh, '<:raw', '/dev/urandom' or die "/dev/urandom: $!\n";
    my $got = read($fh, my $buf, $n);
    die "short read from /dev/urandom\n" unless defined $got && $got == $n;
    close $fh;
    return $buf;
}

sub curl {
    open my $fh, '-|', 'curl', @_ or die "curl: $!\n";
    local $/;
    binmode $fh;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}

# SigV4's encoding (RFC 3986 unreserved kept)
sub uri_escape {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

my $EMPTY_SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

# curl signs with --aws-sigv4; it does not send x-amz-content-sha256,
# which RGW wants, and signs the query as written: the caller gives it
# sorted and encoded.
sub s3 {
    my ($method, $path, %o) = @_;
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_S3_PORT}/$ENV{TEST_NGINX_S3_BUCKET}"
        . ($path =~ m{^\?} ? $path : "/$path");
    my $sha = defined $o{body} ? sha256_hex($o{body}) : $EMPTY_SHA;
    my @args = ('-s', '-i', '-X', $method, '--aws-sigv4', 'aws:amz:us-east-1:s3',
        '--user', "$ENV{TEST_NGINX_S3_ACCESS_KEY}:$ENV{TEST_NGINX_S3_SECRET_KEY}",
        '-H', "x-amz-content-sha256: $sha");
    push @args, '-I' if $method eq 'HEAD';
    my $tmp;
    if (defined $o{body}) {
        $tmp = "/tmp/registry-s3-body.$$";
        open my $fh, '>:raw', $tmp or die "$tmp: $!\n";
        print $fh $o{body};
        close $fh;
        push @args, '--data-binary', "\@$tmp";
    }
    my ($rc, $out) = curl(@args, $url);
    unlink $tmp if $tmp;
    die "curl to S3 failed ($rc)\n" if $rc;
    my ($head, $body) = split /\r\n\r\n/, $out, 2;
    my %h;
    my ($status) = $head =~ m{^HTTP/\S+\s+(\d+)};
    for my $l (split /\r\n/, $head) {
        $h{lc $1} = $2 if $l =~ /^([^:]+):\s*(.*)$/;
    }
    return { status => $status, headers => \%h, body => $body // '' };
}

# own_bucket($name): a bucket of this file's own (created if missing),
# made TEST_NGINX_S3_BUCKET for what follows: the configs and s3().
# For a file whose checks list the whole bucket ("no new object"), which
# another file pushing beside it (prove -j) would break.
sub own_bucket {
    my ($name) = @_;
    $ENV{TEST_NGINX_S3_BUCKET} = $name;
    my $r = s3('PUT', '');
    die "CreateBucket $name: $r->{status} $r->{body}\n"
        unless $r->{status} == 200 || $r->{body} =~ /BucketAlreadyOwnedByYou/;
    return $name;
}

sub s3_objects {
    my ($prefix) = @_;
    my (@objects, $token);
    while (1) {
        my $q = '?' . join '&',
            ($token ? 'continuation-token=' . uri_escape($token) : ()),
            'list-type=2', 'prefix=' . uri_escape($prefix);
        my $r = s3('GET', $q);
        die "ListObjectsV2: $r->{status} $r->{body}\n" unless $r->{status} == 200;
        while ($r->{body} =~ m{<Contents>(.*?)</Contents>}gs) {
            my $c = $1;
            my ($key) = $c =~ m{<Key>(.*?)</Key>};
            my ($size) = $c =~ m{<Size>(\d+)</Size>};
            my ($etag) = $c =~ m{<ETag>(.*?)</ETag>};
            $etag =~ s/&quot;|"//g;
            push @objects, { key => $key, size => $size, etag => $etag };
        }
        last unless $r->{body} =~ m{<IsTruncated>true</IsTruncated>};
        ($token) = $r->{body} =~ m{<NextContinuationToken>(.*?)</NextContinuationToken>};
        last unless defined $token;
    }
    return \@objects;
}

sub s3_uploads {
    my ($prefix) = @_;
    my $r = s3('GET', '?prefix=' . uri_escape($prefix) . '&uploads=');
    die "ListMultipartUploads: $r->{status} $r->{body}\n" unless $r->{status} == 200;
    return [ $r->{body} =~ m{<Upload>.*?<Key>(.*?)</Key>.*?</Upload>}gs ];
}

sub s3_delete {
    my ($key) = @_;
    return s3('DELETE', $key)->{status};
}

sub pipelined {
    my ($port, $raw, $timeout) = @_;
    require IO::Socket::INET;
    require IO::Select;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        Proto => 'tcp', Timeout => 5) or die "connect to $port: $@\n";
    print $sock $raw;
    my $sel = IO::Select->new($sock);
    my $out = '';
    my $deadline = time + ($timeout // 10);
    while (time < $deadline && $sel->can_read($deadline - time)) {
        my $n = sysread($sock, my $buf, 65536);
        last unless $n;
        $out .= $buf;
    }
    close $sock;
    return $out;
}

sub registry_blocks {
    my %d = (http_config => $HttpConfig, config => $Config,
        no_error_log => "[error]\n[crit]\n[alert]", @_);
    Test::Nginx::Socket::add_block_preprocessor(sub {
        my $block = shift;
        for my $k (sort keys %d) {
            $block->set_value($k, $d{$k}) unless defined $block->$k;
        }
    });
    Test::Nginx::Socket::no_root_location();
    Test::Nginx::Socket::no_shuffle();
}

sub blob_key {
    my ($digest) = @_;
    return redis_cli('HGET', "blob:$digest", 'key');
}

1;
