# Blob uploads: POST (session, monolithic ?digest=, ?mount=&from=), PATCH
# (with Content-Range and streamed), GET status, PUT ?digest= (with and
# without a last chunk), DELETE; 416 for out-of-order and retried chunks;
# sessions continued by another nginx; S3's part rules (a 12 MiB blob in
# 1 MiB chunks); what the bucket holds afterwards (nothing twice, nothing
# under a wrong digest); memory per request.  Real nginx with the module,
# real Redis, real RGW.
#
# Repositories: utest/* (this file only).  Blob contents are random, so a
# run never meets the bytes of an earlier one in the bucket.
BEGIN { push @INC, 't/lib' }
BEGIN {
    # a servroot of its own: other files' runs must not remove it under us
    require Cwd;
    $ENV{TEST_NGINX_SERVROOT} ||= Cwd::getcwd() . '/t/servroot-uploads';
}
use strict;
use warnings;
use Test::Nginx::Socket 'no_plan';
use Digest::MD5 qw(md5_hex);
use File::Path qw(make_path);
use POSIX ();
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use Registry::Blobs qw($HttpConfig $Config d random_bytes redis_cli s3
    s3_objects s3_uploads s3_delete blob_key curl registry_blocks);
use Registry::Harness qw(start_nginx read_file free_ports);

our $X = random_bytes(2000);
our $DX = d($X);
our $LX = length $X;
our $Y = random_bytes(100);          # never pushed under its own digest
our $DY = d($Y);
our $EMPTY = d('');
our $UNKNOWN_ID = join '', map { sprintf '%02x', int rand 256 } 1 .. 16;
our $SHA512 = 'sha512:' . ('cd' x 64);

our $ID = qr{[0-9a-f]{32}};

# blocks without their own config get the registry's; no default root
# location; blocks in file order
registry_blocks();
run_tests();

my $MiB = 1024 * 1024;
# instance($n) listens on $port + $n, n = 1 .. 4
my $port = free_ports($ENV{TEST_NGINX_SERVER_PORT} + 1, 4) - 1;
my $top = Cwd::getcwd();

sub instance {
    my ($n, %o) = @_;
    return start_nginx(port => $port + $n, servroot => "$top/t/servroot-uploads-$n",
        root_location => 0, http_config => $HttpConfig . ($o{http} // ''),
        config => $Config, %o);
}

# a session: its Location
sub post {
    my ($ngx, $repo) = @_;
    my $r = $ngx->request('POST', "/v2/$repo/blobs/uploads/");
    is $r->{status}, 202, "POST /v2/$repo/blobs/uploads/: 202";
    return $r->{headers}{location};
}

# PATCH with Content-Range (from => offset), or streamed: chunked
# transfer encoding, no Content-Range
sub patch {
    my ($ngx, $loc, $data, %o) = @_;
    my @h = (['Content-Type', 'application/octet-stream']);
    my $body = $data;
    if (defined $o{from}) {
        push @h, ['Content-Range', "$o{from}-" . ($o{from} + length($data) - 1)];
    } else {
        push @h, ['Transfer-Encoding', 'chunked'];
        $body = '';
        for (my $i = 0; $i < length $data; $i += 65536) {
            my $c = substr($data, $i, 65536);
            $body .= sprintf("%x\r\n", length $c) . "$c\r\n";
        }
        $body .= "0\r\n\r\n";
    }
    return $ngx->request('PATCH', $loc, headers => \@h, body => $body, timeout => 60);
}

sub put {
    my ($ngx, $loc, $digest, $data) = @_;
    return $ngx->request('PUT', "$loc?digest=$digest", body => $data // '',
        headers => [['Content-Type', 'application/octet-stream']], timeout => 60);
}

sub id_of { ($_[0] // '') =~ m{/blobs/uploads/([0-9a-f]{32})$} ? $1 : '' }

sub error_code { ($_[0]{body} // '') =~ /"code":"([A-Z_]+)"/ ? $1 : '' }

# what is left of a session in Redis
sub session_keys {
    my ($id) = @_;
    return redis_cli('EXISTS', "upload:$id", "upload:$id:etags", "upload:$id:tail");
}

my $A = instance(1);

# --- one session, every step: chunk with Content-Range, status, refused
# chunks (out of order, retried, length mismatch), streamed chunk, PUT with
# the last chunk
{
    my $blob = random_bytes(100_000);
    my ($c1, $c2, $c3) = (substr($blob, 0, 30_000), substr($blob, 30_000, 50_000),
        substr($blob, 80_000));
    my $loc = post($A, 'utest/flow');
    like $loc, qr{^/v2/utest/flow/blobs/uploads/$ID$}, '... Location names the session';
    my $id = id_of($loc);

    my $r = patch($A, $loc, $c1, from => 0);
    is $r->{status}, 202, 'PATCH with Content-Range 0-29999: 202';
    is $r->{headers}{location}, $loc, '... Location';
    is $r->{headers}{range}, '0-29999', '... Range';
    is $r->{headers}{'docker-upload-uuid'}, $id, '... Docker-Upload-UUID';
    is $r->{headers}{'content-length'}, 0, '... no body';

    $r = $A->request('GET', $loc);
    is $r->{status}, 204, 'GET of the session: 204';
    is $r->{headers}{range}, '0-29999', '... Range';
    is $r->{headers}{location}, $loc, '... Location';
    is $r->{headers}{'docker-upload-uuid'}, $id, '... Docker-Upload-UUID';

    $r = patch($A, $loc, $c2, from => 30_001);
    is $r->{status}, 416, 'an out-of-order chunk: 416';
    is $r->{headers}{range}, '0-29999', '... with the current Range';
    is $r->{headers}{location}, $loc, '... and Location';
    is error_code($r), 'BLOB_UPLOAD_INVALID', '... BLOB_UPLOAD_INVALID';

    $r = patch($A, $loc, $c1, from => 0);
    is $r->{status}, 416, 'the first chunk again (a retry): 416';
    is $r->{headers}{range}, '0-29999', '... with the current Range';

    $r = $A->request('PATCH', $loc, body => 'abc',
        headers => [['Content-Range', '30000-30009']]);
    is $r->{status}, 416, 'Content-Range longer than the body: 416';

    $r = $A->request('PATCH', $loc, body => 'abc',
        headers => [['Content-Range', 'nonsense']]);
    is $r->{status}, 416, 'a Content-Range without a range: 416';

    $r = $A->request('GET', $loc);
    is $r->{headers}{range}, '0-29999', 'refused chunks changed nothing';

    $r = patch($A, $loc, $c2);
    is $r->{status}, 202, 'a streamed PATCH (chunked, no Content-Range): 202';
    is $r->{headers}{range}, '0-79999', '... Range';

    $r = $A->request('PATCH', $loc, body => '',
        headers => [['Content-Range', '80000-79999']]);
    is $r->{status}, 416, 'an empty chunk claiming a range: 416';

    $r = $A->request('PATCH', $loc, body => '');
    is $r->{status}, 202, 'an empty PATCH: 202';
    is $r->{headers}{range}, '0-79999', '... Range unchanged';

    $r = $A->request('PUT', "$loc?digest=" . d($blob), body => $c3,
        headers => [['Content-Range', 'bytes 80000-99999/100000']]);
    is $r->{status}, 201, 'PUT ?digest= with the last chunk (and its Content-Range): 201';
    is $r->{headers}{location}, '/v2/utest/flow/blobs/' . d($blob), '... Location of the blob';
    is $r->{headers}{'docker-content-digest'}, d($blob), '... Docker-Content-Digest';

    $r = $A->request('GET', '/v2/utest/flow/blobs/' . d($blob));
    is $r->{status}, 200, 'the blob';
    ok $r->{body} eq $blob, '... byte for byte';
    is $r->{headers}{'content-length'}, 100_000, '... Content-Length';

    $r = $A->request('GET', $loc);
    is $r->{status}, 404, 'the session is over: GET 404';
    is error_code($r), 'BLOB_UPLOAD_UNKNOWN', '... BLOB_UPLOAD_UNKNOWN';
    is patch($A, $loc, 'x', from => 100_000)->{status}, 404, '... PATCH 404';
    is put($A, $loc, d($blob))->{status}, 404, '... PUT 404';
    is session_keys($id), 0, '... nothing of it in Redis';
}

# --- PUT without a last chunk; the session of another repository
{
    my $blob = random_bytes(5000);
    my $loc = post($A, 'utest/nolast');
    my $r = patch($A, $loc, $blob, from => 0);
    is $r->{status}, 202, 'PATCH the whole blob';

    (my $other = $loc) =~ s{utest/nolast}{utest/other};
    is $A->request('GET', $other)->{status}, 404,
        'the session through another repository: GET 404';
    is patch($A, $other, 'x', from => 5000)->{status}, 404, '... PATCH 404';
    is put($A, $other, d($blob))->{status}, 404, '... PUT 404';
    is $A->request('DELETE', $other)->{status}, 404, '... DELETE 404';

    $r = put($A, $loc, d($blob));
    is $r->{status}, 201, 'PUT ?digest= without a last chunk: 201';
    is $r->{headers}{'docker-content-digest'}, d($blob), '... Docker-Content-Digest';
    $r = $A->request('GET', '/v2/utest/nolast/blobs/' . d($blob));
    ok $r->{status} == 200 && $r->{body} eq $blob, '... the blob';
    is $A->request('GET', '/v2/utest/other/blobs/' . d($blob))->{status}, 404,
        '... visible only where it was pushed';
}

# --- DELETE of a session; a wrong digest ends the session, stores nothing
{
    my $loc = post($A, 'utest/cancel');
    my $id = id_of($loc);
    is patch($A, $loc, 'some bytes', from => 0)->{status}, 202, 'PATCH';
    my $r = $A->request('DELETE', $loc);
    is $r->{status}, 204, 'DELETE of the session: 204';
    is $A->request('GET', $loc)->{status}, 404, '... then GET 404';
    is $A->request('DELETE', $loc)->{status}, 404, '... DELETE 404';
    is put($A, $loc, d('some bytes'))->{status}, 404, '... PUT 404';
    is session_keys($id), 0, '... nothing of it in Redis';

    my $blob = random_bytes(3000);
    $loc = post($A, 'utest/wrong');
    $id = id_of($loc);
    patch($A, $loc, $blob, from => 0);
    $r = put($A, $loc, d($blob . 'x'));
    is $r->{status}, 400, 'PUT with a digest the bytes do not have: 400';
    is error_code($r), 'DIGEST_INVALID', '... DIGEST_INVALID';
    is $A->request('HEAD', '/v2/utest/wrong/blobs/' . d($blob . 'x'))->{status}, 404,
        '... nothing under the claimed digest';
    is $A->request('HEAD', '/v2/utest/wrong/blobs/' . d($blob))->{status}, 404,
        '... nor under the true one';
    is redis_cli('EXISTS', 'blob:' . d($blob . 'x')), 0, '... no descriptor';
    is $A->request('GET', $loc)->{status}, 404, '... and the session is over';
    is session_keys($id), 0, '... in Redis too';
    is scalar @{ s3_objects("data/$id") }, 0, '... no object in the bucket';

    $r = put($A, post($A, 'utest/wrong'), 'sha256:' . ('0' x 63));
    is error_code($r), 'DIGEST_INVALID', 'PUT with a malformed digest: DIGEST_INVALID';
}

# --- the empty blob through a session
{
    my $loc = post($A, 'utest/empty');
    my $r = put($A, $loc, $EMPTY);
    is $r->{status}, 201, 'the empty blob: POST, then PUT ?digest= with no byte: 201';
    $r = $A->request('GET', "/v2/utest/empty/blobs/$EMPTY");
    is $r->{status}, 200, '... GET 200';
    is $r->{headers}{'content-length'}, 0, '... Content-Length: 0';
}

# --- 12 MiB in 1 MiB chunks: S3 refuses parts under 5 MiB but the last,
# so chunks gather in the session until they make a part
{
    my $blob = random_bytes(12 * $MiB);
    my $loc = post($A, 'utest/twelve');
    my $id = id_of($loc);
    my @ranges;
    for my $i (0 .. 11) {
        my $r = patch($A, $loc, substr($blob, $i * $MiB, $MiB), from => $i * $MiB);
        push @ranges, "$r->{status} $r->{headers}{range}";
    }
    is_deeply \@ranges, [map { "202 0-" . (($_ + 1) * $MiB - 1) } 0 .. 11],
        '12 PATCHes of 1 MiB: 202 each, Range growing';
    is_deeply s3_uploads("data/$id"), ["data/$id"],
        '... one multipart upload is open for the session';
    my $t = time;
    my $r = put($A, $loc, d($blob));
    is $r->{status}, 201, '... PUT ?digest=: 201' or diag $r->{body};
    diag sprintf 'commit of 12 MiB in 12 chunks: %.3f s', time - $t;
    $r = $A->request('GET', '/v2/utest/twelve/blobs/' . d($blob), timeout => 60);
    is $r->{status}, 200, '... GET 200';
    is length $r->{body}, 12 * $MiB, '... 12 MiB';
    ok $r->{body} eq $blob, '... byte for byte';
    my $key = blob_key(d($blob));
    is $key, "data/$id", '... stored where the session wrote it (no copy)';
    like s3('HEAD', $key)->{headers}{etag}, qr/-3"?$/,
        '... as a multipart object of 3 parts (5 + 5 + 2 MiB)';
    is_deeply s3_uploads("data/$id"), [], '... no multipart upload left open';
    is session_keys($id), 0, '... no session left in Redis';
}

# --- a session whose chunks go alternately to two nginx instances that
# share Redis and S3
{
    my $B = instance(2);
    my @sizes = (3 * $MiB, 4 * $MiB + 1, 6 * $MiB, 100, $MiB);
    my $blob = random_bytes(eval { my $n = 2 * $MiB + 7; $n += $_ for @sizes; $n });
    my $loc = post($A, 'utest/hop');
    my $id = id_of($loc);
    my ($off, $i, @seen) = (0, 0);
    for my $size (@sizes) {
        my $ngx = $i++ % 2 ? $A : $B;
        my $r = patch($ngx, $loc, substr($blob, $off, $size), from => $off);
        $off += $size;
        push @seen, "$r->{status} $r->{headers}{range}";
        my $s = ($ngx == $A ? $B : $A)->request('GET', $loc);
        push @seen, "$s->{status} $s->{headers}{range}";
    }
    my @want;
    $off = 0;
    for my $size (@sizes) { $off += $size; push @want, ("202 0-" . ($off - 1), "204 0-" . ($off - 1)) }
    is_deeply \@seen, \@want,
        'PATCHes alternately on two instances: each sees what the other did';
    my $r = patch($B, $loc, substr($blob, $off, $MiB), from => $off - 1);
    is $r->{status}, 416, 'a chunk overlapping the end on the other instance: 416';
    $r = put($A, $loc, d($blob), substr($blob, $off));
    is $r->{status}, 201, 'PUT with the last chunk on the other instance: 201'
        or diag $r->{body};
    is $r->{headers}{'docker-content-digest'}, d($blob), '... the right digest';
    $r = $B->request('GET', '/v2/utest/hop/blobs/' . d($blob), timeout => 60);
    ok $r->{status} == 200 && $r->{body} eq $blob, '... read back through the other: byte for byte';
    like s3('HEAD', "data/$id")->{headers}{etag}, qr/-3"?$/,
        '... one multipart object of 3 parts';
    $B->stop;
}

# --- a wrong digest that names a blob which exists leaves it as it is
{
    my $r = $A->request('POST', "/v2/utest/exists/blobs/uploads/?digest=$DX", body => $X);
    is $r->{status}, 201, 'push X';
    my $key = blob_key($DX);
    my %before = (desc => redis_cli('HGETALL', "blob:$DX"),
        etag => s3('HEAD', $key)->{headers}{etag});

    $r = $A->request('POST', "/v2/utest/exists/blobs/uploads/?digest=$DX", body => $Y);
    is $r->{status}, 400, 'monolithic push of other bytes claiming X: 400';
    is error_code($r), 'DIGEST_INVALID', '... DIGEST_INVALID';
    is scalar(grep { $_->{etag} eq md5_hex($Y) } @{ s3_objects('data/') }), 0,
        '... and its bytes are nowhere in the bucket';

    my $big = random_bytes(6 * $MiB);
    my $loc = post($A, 'utest/exists');
    my $id1 = id_of($loc);
    is patch($A, $loc, $big, from => 0)->{status}, 202, 'a session with a 6 MiB part';
    $r = put($A, $loc, $DX);
    is $r->{status}, 400, '... PUT claiming X: 400';
    is error_code($r), 'DIGEST_INVALID', '... DIGEST_INVALID';

    $loc = post($A, 'utest/exists');
    my $id2 = id_of($loc);
    $r = put($A, $loc, $DX, $Y);
    is $r->{status}, 400, 'a PUT with a last chunk claiming X: 400';

    $r = $A->request('GET', "/v2/utest/exists/blobs/$DX");
    ok $r->{status} == 200 && $r->{body} eq $X, 'X is served, byte for byte';
    is blob_key($DX), $key, '... from the same object';
    is redis_cli('HGETALL', "blob:$DX"), $before{desc}, '... with the same descriptor';
    is s3('HEAD', $key)->{headers}{etag}, $before{etag}, '... whose bytes did not change';
    ok !@{ s3_objects("data/$id1") } && !@{ s3_objects("data/$id2") },
        '... and the refused sessions left no object';
    is_deeply s3_uploads("data/$id1"), [], '... nor an open multipart upload';
}

# --- a blob that exists is not stored again, whichever way it comes
{
    my $Z = random_bytes(70_001);
    my $dz = d($Z);
    my $copies = sub { scalar grep { $_->{etag} eq md5_hex($Z) } @{ s3_objects('data/') } };

    my $r = $A->request('POST', "/v2/utest/dup1/blobs/uploads/?digest=$dz", body => $Z);
    is $r->{status}, 201, 'push Z';
    is $copies->(), 1, '... one object holds it';

    $r = $A->request('POST', "/v2/utest/dup1/blobs/uploads/?digest=$dz", body => $Z);
    is $r->{status}, 201, 'push Z again, monolithic: 201';
    $r = $A->request('POST', "/v2/utest/dup2/blobs/uploads/?digest=$dz", body => $Z);
    is $r->{status}, 201, '... and into another repository: 201';
    my $loc = post($A, 'utest/dup3');
    my $id = id_of($loc);
    patch($A, $loc, $Z, from => 0);
    is put($A, $loc, $dz)->{status}, 201, '... and through a session: 201';
    is $copies->(), 1, '... still one object';
    is s3('HEAD', "data/$id")->{status}, 404, '... the session stored nothing';
    for my $repo (qw(utest/dup2 utest/dup3)) {
        $r = $A->request('GET', "/v2/$repo/blobs/$dz");
        ok $r->{status} == 200 && $r->{body} eq $Z, "... served by $repo";
    }

    # with parts in S3 already when the digest turns out known
    my $W = random_bytes(6 * $MiB + 3);
    $r = $A->request('POST', '/v2/utest/dup1/blobs/uploads/?digest=' . d($W), body => $W);
    is $r->{status}, 201, 'push a 6 MiB blob';
    $loc = post($A, 'utest/dup4');
    $id = id_of($loc);
    patch($A, $loc, substr($W, 0, 5 * $MiB), from => 0);
    is_deeply s3_uploads("data/$id"), ["data/$id"], '... again through a session: a part is in S3';
    is put($A, $loc, d($W), substr($W, 5 * $MiB))->{status}, 201, '... PUT: 201';
    is_deeply s3_uploads("data/$id"), [], '... the multipart upload is aborted';
    is s3('HEAD', "data/$id")->{status}, 404, '... and no object made';
    $r = $A->request('GET', '/v2/utest/dup4/blobs/' . d($W), timeout => 30);
    ok $r->{status} == 200 && $r->{body} eq $W, '... served by the new repository';
}

# --- two PATCHes at the same offset at once, with different bytes: one
# wins, the other gets 409 (the winner holds the session) or 416 (the
# winner is done) and leaves nothing behind (S3 checks only MD5
# when it completes, RGW refuses stray parts: the loser must not write)
for my $round (1, 2) {
    my @blobs = map { random_bytes(6 * $MiB) } 1, 2;
    my $loc = post($A, 'utest/race');
    my $id = id_of($loc);
    my @kids;
    for my $n (0, 1) {
        pipe my $rd, my $wr or die $!;
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $rd;
            my $r = patch($A, $loc, $blobs[$n], from => 0);
            print $wr "$r->{status}\n";
            close $wr;
            # not exit: END blocks would stop the instances
            POSIX::_exit(0);
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    my @status = map { my $s = readline $_->[1]; waitpid $_->[0], 0; chomp $s; $s } @kids;
    like join(' ', sort @status), qr/^202 (?:409|416)$/,
        "round $round: two 6 MiB chunks at offset 0 at once: 202 and 409 or 416";
    my $won = $status[0] == 202 ? 0 : 1;
    is $A->request('GET', $loc)->{headers}{range}, '0-' . (6 * $MiB - 1),
        '... the session holds one';
    is_deeply s3_uploads("data/$id"), ["data/$id"], '... in one multipart upload';
    my $r = put($A, $loc, d($blobs[$won]));
    is $r->{status}, 201, "... PUT with the winner's digest: 201" or diag $r->{body};
    $r = $A->request('GET', '/v2/utest/race/blobs/' . d($blobs[$won]), timeout => 30);
    ok $r->{status} == 200 && $r->{body} eq $blobs[$won], "... the winner's bytes";
    is_deeply s3_uploads("data/$id"), [], '... no multipart upload left open';
}

# --- a session another request holds ("busy": token and deadline, as a
# worker that died while sending a part leaves it) refuses chunks until
# the deadline, with 409 (not a range error) and Retry-After; an expired
# claim is no obstacle
{
    my $loc = post($A, 'utest/busy');
    my $id = id_of($loc);
    my $deadline = (split /\n/, redis_cli('TIME'))[0] + 2;
    redis_cli('HSET', "upload:$id", 'busy', ('f' x 32) . " $deadline");
    my $r = patch($A, $loc, 'small', from => 0);
    is $r->{status}, 409, 'a chunk for a session another request holds: 409';
    like $r->{body}, qr/"BLOB_UPLOAD_INVALID".*another request is writing/,
        '... saying so';
    like $r->{headers}{'retry-after'} // '', qr/^[12]$/, '... Retry-After: the seconds left';
    is $r->{headers}{range}, '0-0', '... Range unchanged';
    is patch($A, $loc, random_bytes(5 * $MiB), from => 0)->{status}, 409,
        '... a part-sized chunk too';
    is put($A, $loc, $EMPTY)->{status}, 409, '... and the final PUT';
    sleep 2.5;
    is patch($A, $loc, 'small', from => 0)->{status}, 202, '... which all go through after its deadline';
    redis_cli('HSET', "upload:$id", 'busy', ('f' x 32) . ' 1');
    is patch($A, $loc, ' more', from => 5)->{status}, 202, 'an expired claim is no obstacle';
    is put($A, $loc, d('small more'))->{status}, 201, '... nor to the PUT';
}

# --- a client that goes away: before its body is in, nothing changed;
# while its part goes to S3, the session is not left claimed
{
    my $blob = random_bytes(12 * $MiB);
    my $loc = post($A, 'utest/gone');
    my $id = id_of($loc);
    my $raw = "PATCH $loc HTTP/1.1\r\nHost: localhost\r\n"
        . "Content-Range: 0-" . (6 * $MiB - 1) . "\r\nContent-Length: " . (6 * $MiB) . "\r\n\r\n";
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port + 1)
        or die "connect: $@";
    print $sock $raw, substr($blob, 0, $MiB);
    close $sock;
    sleep 0.3;
    my $r = $A->request('GET', $loc);
    is $r->{headers}{range}, '0-0', 'a PATCH whose client left halfway changed nothing';

    $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port + 1)
        or die "connect: $@";
    print $sock $raw, substr($blob, 0, 6 * $MiB);
    shutdown $sock, 1;
    close $sock;
    my ($range, $busy);
    for (1 .. 50) {
        sleep 0.1;
        $busy = redis_cli('HGET', "upload:$id", 'busy');
        last if $busy eq '';
    }
    is $busy, '', 'a PATCH whose client left after its body does not keep the session';
    $range = $A->request('GET', $loc)->{headers}{range};
    like $range, qr/^0-(?:0|@{[6 * $MiB - 1]})$/, '... which holds the chunk or not';
    my $off = $range eq '0-0' ? 0 : 6 * $MiB;
    is patch($A, $loc, substr($blob, $off), from => $off)->{status}, 202,
        '... and takes the rest at once';
    is put($A, $loc, d($blob))->{status}, 201, '... PUT: 201';
    $r = $A->request('GET', '/v2/utest/gone/blobs/' . d($blob), timeout => 30);
    ok $r->{status} == 200 && $r->{body} eq $blob, '... byte for byte';
}

# --- sessions expire
{
    my $E = instance(3, http => "    registry_upload_expires 1s;\n");
    my $loc = post($E, 'utest/expire');
    my $id = id_of($loc);
    is patch($E, $loc, 'abc', from => 0)->{status}, 202, 'a session that expires in 1 s';
    sleep 2.2;
    my $r = $E->request('GET', $loc);
    is $r->{status}, 404, '... is unknown 2 s later';
    is error_code($r), 'BLOB_UPLOAD_UNKNOWN', '... BLOB_UPLOAD_UNKNOWN';
    is session_keys($id), 0, '... and gone from Redis';
    $E->stop;
}

# (but the S3 request cut short by the client that left, above)
my @bad = grep { /\[(?:error|crit|alert|emerg)\]/ && !/ got no answer \(499\)/ }
    split /\n/, $A->error_log;
is scalar @bad, 0, 'no error in the log of the first instance' or diag join "\n", @bad;
$A->stop;

# --- memory: a 256 MiB blob pushed in one POST, pulled, and pushed in one
# streamed PATCH; the worker's peak RSS stays far from the blob's size
SKIP: {
    skip 'TEST_UPLOADS_NO_BIG=1', 8 if $ENV{TEST_UPLOADS_NO_BIG};
    my $M = instance(4);
    my $dir = "$top/t/servroot-uploads-4/data";
    make_path($dir);
    my $file = "$dir/big";
    system("head -c " . (256 * $MiB) . " /dev/urandom > '$file'") == 0 or die "head: $?\n";
    my ($digest) = `sha256sum '$file'` =~ /^([0-9a-f]{64})/;
    $digest = "sha256:$digest";

    my ($worker) = grep { (read_file("/proc/$_/stat") // '') =~ /^\d+ \(.*?\) \S+ $M->{pid} / }
        map { m{/proc/(\d+)/} ? $1 : () } glob '/proc/[0-9]*/stat';
    my $rss = sub {
        my ($what) = @_;
        (read_file("/proc/$worker/status") // '') =~ /^$what:\s+(\d+) kB/m ? $1 : 0;
    };
    $M->request('GET', '/v2/');
    my $idle = $rss->('VmRSS');

    my $t = time;
    my ($rc, $out) = curl('-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST',
        '-H', 'Content-Type: application/octet-stream', '--data-binary', "\@$file",
        $M->url("/v2/utest/mem/blobs/uploads/?digest=$digest"));
    is $out, 201, '256 MiB in one POST: 201';
    my $push = time - $t;

    $t = time;
    ($rc, $out) = curl('-s', '-o', "$file.back", '-w', '%{http_code}',
        $M->url("/v2/utest/mem/blobs/$digest"));
    is $out, 200, '... GET: 200';
    my $pull = time - $t;
    is system('cmp', '-s', $file, "$file.back"), 0, '... byte for byte';

    my $loc = post($M, 'utest/mem2');
    ($rc, $out) = curl('-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PATCH',
        '-H', 'Transfer-Encoding: chunked', '--data-binary', "\@$file", $M->url($loc));
    is $out, 202, '... one streamed PATCH of 256 MiB: 202';
    is put($M, $loc, $digest)->{status}, 201, '... PUT: 201';

    my $peak = $rss->('VmHWM');
    diag sprintf '256 MiB: push %.0f MB/s, pull %.0f MB/s; worker RSS idle %d KiB, peak %d KiB',
        256 * 1.048576 / $push, 256 * 1.048576 / $pull, $idle, $peak;
    ok $worker && $idle > 0, 'the worker is measured';
    cmp_ok $peak - $idle, '<', 32 * 1024, '... its peak RSS grew by less than 32 MiB';

    # the test bucket is not collected: these bytes go now
    my $key = blob_key($digest);
    is s3_delete($key), 204, 'the 256 MiB object is deleted';
    redis_cli('DEL', "blob:$digest", "blob:$digest:links");
    redis_cli('SREM', 'blobs', $digest);
    redis_cli('SREM', "repo:utest/$_:blobs", $digest) for qw(mem mem2);
    unlink $file, "$file.back";
    $M->stop;
}

__DATA__

=== TEST 1: POST opens a session: 202, Location, Range 0-0, Docker-Upload-UUID
--- request
POST /v2/utest/one/blobs/uploads/
--- error_code: 202
--- response_headers_like
Location: /v2/utest/one/blobs/uploads/[0-9a-f]{32}
Range: 0-0
Docker-Upload-UUID: [0-9a-f]{32}
Content-Length: 0
Docker-Distribution-API-Version: registry/2.0
--- response_body chomp



=== TEST 2: monolithic POST ?digest=: 201; a wrong digest stores nothing
--- request eval
[
    "POST /v2/utest/one/blobs/uploads/?digest=$::DY\n$::X",
    "HEAD /v2/utest/one/blobs/$::DY",
    "HEAD /v2/utest/one/blobs/$::DX",
    "POST /v2/utest/one/blobs/uploads/?digest=$::DX\n$::X",
    "GET /v2/utest/one/blobs/$::DX",
]
--- more_headers eval
["Content-Length: $::LX", "", "", "Content-Length: $::LX", ""]
--- error_code eval
[400, 404, 404, 201, 200]
--- response_headers eval
[
    "Content-Type: application/json\n!Location",
    "", "",
    "Location: /v2/utest/one/blobs/$::DX\nDocker-Content-Digest: $::DX",
    "Docker-Content-Digest: $::DX",
]
--- response_body eval
[qr/^\{"errors":\[\{"code":"DIGEST_INVALID","message":"[^"]+"\}\]\}$/, "", "", "", $::X]



=== TEST 3: digest forms in POST and PUT: other algorithms UNSUPPORTED, garbage DIGEST_INVALID
--- request eval
[
    "POST /v2/utest/one/blobs/uploads/?digest=$::SHA512\nabc",
    "POST /v2/utest/one/blobs/uploads/?digest=garbage\nabc",
    "POST /v2/utest/one/blobs/uploads/?digest=sha256:" . ("F" x 64) . "\nabc",
    "POST /v2/utest/one/blobs/uploads/?digest=\nabc",
    "PUT /v2/utest/one/blobs/uploads/$::UNKNOWN_ID?digest=$::SHA512",
    "PUT /v2/utest/one/blobs/uploads/$::UNKNOWN_ID?digest=sha256:abc",
    "PUT /v2/utest/one/blobs/uploads/$::UNKNOWN_ID",
    "POST /v2/utest/one/blobs/uploads/?mount=$::SHA512&from=utest/one",
    "POST /v2/utest/one/blobs/uploads/?mount=nonsense&from=utest/one",
]
--- error_code eval
[(400) x 9]
--- response_body_like eval
[
    qr/"code":"UNSUPPORTED"/,
    (qr/"code":"DIGEST_INVALID"/) x 3,
    qr/"code":"UNSUPPORTED"/,
    (qr/"code":"DIGEST_INVALID"/) x 2,
    qr/"code":"UNSUPPORTED"/,
    qr/"code":"DIGEST_INVALID"/,
]



=== TEST 4: mount: with from (201); without from, from a repository lacking it, or of an unknown blob (202)
--- request eval
[
    "POST /v2/utest/two/blobs/uploads/?mount=$::DX&from=utest/one",
    "GET /v2/utest/two/blobs/$::DX",
    "POST /v2/utest/three/blobs/uploads/?mount=$::DX",
    "POST /v2/utest/three/blobs/uploads/?mount=$::DX&from=utest/nothing",
    "POST /v2/utest/three/blobs/uploads/?mount=$::DY&from=utest/one",
    "POST /v2/utest/three/blobs/uploads/?mount=$::DX&from=UTEST/one",
    "POST /v2/utest/three/blobs/uploads/?mount=$::DX&from=utest/one/x",
    "GET /v2/utest/three/blobs/$::DX",
]
--- error_code eval
[201, 200, 202, 202, 202, 202, 202, 404]
--- response_headers_like eval
[
    "Location: /v2/utest/two/blobs/$::DX\nDocker-Content-Digest: $::DX\nContent-Length: 0",
    "Docker-Content-Digest: $::DX",
    ("Location: /v2/utest/three/blobs/uploads/[0-9a-f]{32}\nRange: 0-0\n"
     . "Docker-Upload-UUID: [0-9a-f]{32}\nDocker-Content-Digest: ") x 5,
    "",
]
--- response_body eval
["", $::X, "", "", "", "", "", qr/BLOB_UNKNOWN/]



=== TEST 5: unknown and malformed session ids: 404 BLOB_UPLOAD_UNKNOWN
--- request eval
[
    "GET /v2/utest/one/blobs/uploads/$::UNKNOWN_ID",
    "PATCH /v2/utest/one/blobs/uploads/$::UNKNOWN_ID\nabc",
    "PUT /v2/utest/one/blobs/uploads/$::UNKNOWN_ID?digest=$::DX",
    "DELETE /v2/utest/one/blobs/uploads/$::UNKNOWN_ID",
    "GET /v2/utest/one/blobs/uploads/" . uc($::UNKNOWN_ID),
    "GET /v2/utest/one/blobs/uploads/abc",
    "PATCH /v2/utest/one/blobs/uploads/../../x\nabc",
]
--- error_code eval
[404, 404, 404, 404, 404, 404, 404]
--- response_body_like eval
[(qr/"code":"BLOB_UPLOAD_UNKNOWN"/) x 6, qr/./]



=== TEST 6: methods sessions do not take
--- request eval
[
    "GET /v2/utest/one/blobs/uploads/",
    "PUT /v2/utest/one/blobs/uploads/",
    "POST /v2/utest/one/blobs/uploads/$::UNKNOWN_ID",
    "HEAD /v2/utest/one/blobs/uploads/$::UNKNOWN_ID",
]
--- error_code eval
[405, 405, 405, 405]
--- response_headers eval
["Allow: POST", "Allow: POST", "Allow: GET, PATCH, PUT, DELETE", "Allow: GET, PATCH, PUT, DELETE"]
