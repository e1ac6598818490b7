package Registry::Images;

# Fixtures of the image stream and event tests (t/imagestreams.t,
# t/events.t): images made in memory and pushed over HTTP, the API read
# back as decoded JSON, watches read line by line, and a small webhook
# receiver.
#
#   image(%o)               an image: {config, layers => [...], manifest,
#                           digest, config_digest, type}; options: arch,
#                           os, labels, entrypoint, cmd, created, layers
#                           (count or [bytes]), config_pad (bytes of
#                           padding in the config), type (docker|oci)
#   index_of(@images)       an OCI index listing the images
#   push_image($ngx, $repo, $ref, $image, @headers)
#                           pushes blobs (monolithic POST) and manifest;
#                           returns the manifest PUT's response
#   push_blob($ngx, $repo, $bytes, @headers)
#   api($ngx, $path, @headers)
#                           GET; returns (status, decoded body or undef, res)
#   watch_open($port, $path, @headers)
#                           a watch: {sock, buf}; watch_next($w, $timeout)
#                           returns the next event (decoded) or undef,
#                           watch_status($w) the HTTP status
#   hook_server($port, $file, %o)
#                           a forked HTTP server appending each request
#                           body as one line of JSON {status, body,
#                           content_type} to $file; o: fail_first => N
#                           (answer 500 to the first N), hang => 1
#                           (accept, never answer); returns its pid
#   hook_bodies($file)      the recorded requests, as hashes

use strict;
use warnings;
use Exporter qw(import);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(time sleep);
use Registry::Manifests qw(d $OCI_MANIFEST $OCI_CONFIG $OCI_LAYER $OCI_INDEX
    $D_MANIFEST $D_CONFIG $D_LAYER);

our @EXPORT_OK = qw(image index_of push_image push_blob api watch_open
    watch_next watch_status hook_server hook_bodies d json);

my $JSON = JSON::PP->new->canonical;

sub json { $JSON->encode($_[0]) }

my $seq = 0;

sub image {
    my %o = @_;
    my $type = $o{type} // 'docker';
    my @layers = ref $o{layers} ? @{ $o{layers} }
        : map { "layer $_ of image " . ++$seq . " $$ " . time } 1 .. ($o{layers} // 2);
    my $config = {
        architecture => $o{arch} // 'amd64',
        os => $o{os} // 'linux',
        created => $o{created} // '2024-05-06T07:08:09Z',
        config => {
            Labels => $o{labels} // { 'io.example.name' => 'test' },
            Entrypoint => $o{entrypoint} // ['/bin/app'],
            Cmd => $o{cmd} // ['--serve'],
            Env => ['PATH=/usr/bin'],
        },
        rootfs => { type => 'layers', diff_ids => [map { d($_) } @layers] },
        history => [{ created_by => 'test ' . ++$seq . " $$ " . time }],
    };
    $config->{config}{Labels}{'io.example.pad'} = 'x' x $o{config_pad}
        if $o{config_pad};
    my $cbytes = $JSON->encode($config);
    my ($mt, $ct, $lt) = $type eq 'oci'
        ? ($OCI_MANIFEST, $OCI_CONFIG, $OCI_LAYER)
        : ($D_MANIFEST, $D_CONFIG, $D_LAYER);
    my $manifest = Registry::Manifests::image($mt, $ct, $cbytes,
        map { [$lt, $_] } @layers);
    return { config => $cbytes, config_digest => d($cbytes), layers => \@layers,
        manifest => $manifest, digest => d($manifest), type => $mt,
        layer_type => $lt, config_type => $ct };
}

sub index_of {
    my @images = @_;
    my $i = 0;
    my $manifest = Registry::Manifests::index_of($OCI_INDEX, map { [
        $_->{type}, $_->{manifest}, ',"platform":{"architecture":"'
            . (qw(amd64 arm64 s390x))[$i++ % 3] . '","os":"linux"}',
    ] } @images);
    return { manifest => $manifest, digest => d($manifest), children => \@images,
        type => $OCI_INDEX };
}

sub push_blob {
    my ($ngx, $repo, $bytes, @h) = @_;
    return $ngx->request('POST', "/v2/$repo/blobs/uploads/?digest=" . d($bytes),
        body => $bytes, headers => [['Content-Type', 'application/octet-stream'], @h]);
}

sub push_image {
    my ($ngx, $repo, $ref, $img, @h) = @_;
    if ($img->{children}) {
        for my $c (@{ $img->{children} }) {
            my $r = push_image($ngx, $repo, $c->{digest}, $c, @h);
            return $r unless $r->{status} == 201;
        }
    } else {
        for my $b ($img->{config}, @{ $img->{layers} }) {
            my $r = push_blob($ngx, $repo, $b, @h);
            die "blob push to $repo: $r->{status} " . ($r->{error} // $r->{body}) . "\n"
                unless $r->{status} == 201;
        }
    }
    return $ngx->request('PUT', "/v2/$repo/manifests/$ref", body => $img->{manifest},
        headers => [['Content-Type', $img->{type}], @h]);
}

sub api {
    my ($ngx, $path, @h) = @_;
    my $r = $ngx->request('GET', $path, headers => [@h]);
    my $body = eval { decode_json($r->{body}) };
    return ($r->{status}, $body, $r);
}

# a watch, read from a raw socket: the chunked body, one event per line
sub watch_open {
    my ($port, $path, @h) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        Proto => 'tcp', Timeout => 5) or die "connect to $port: $@\n";
    $sock->autoflush(1);
    print $sock "GET $path HTTP/1.1\r\nHost: localhost\r\n"
        . join('', map { "$_->[0]: $_->[1]\r\n" } @h) . "\r\n";
    return { sock => $sock, raw => '', lines => [], status => undef, ended => 0 };
}

sub _watch_fill {
    my ($w, $timeout) = @_;
    my $sel = IO::Select->new($w->{sock});
    return 0 unless $sel->can_read($timeout);
    my $n = sysread($w->{sock}, my $buf, 65536);
    if (!$n) {
        $w->{ended} = 1;
        return 0;
    }
    $w->{raw} .= $buf;
    if (!defined $w->{status}) {
        return 1 unless $w->{raw} =~ /\r\n\r\n/;
        my ($head, $rest) = split /\r\n\r\n/, $w->{raw}, 2;
        ($w->{status}) = $head =~ m{^HTTP/1\.\d (\d+)};
        $w->{chunked} = $head =~ /^Transfer-Encoding:\s*chunked/mi;
        $w->{head} = $head;
        $w->{raw} = $rest;
    }
    # de-chunk what is complete
    if ($w->{chunked}) {
        while ($w->{raw} =~ /^([0-9a-fA-F]+)\r\n/) {
            my $len = hex $1;
            my $hl = length($1) + 2;
            last if length($w->{raw}) < $hl + $len + 2;
            $w->{body} .= substr($w->{raw}, $hl, $len);
            substr($w->{raw}, 0, $hl + $len + 2) = '';
            $w->{ended} = 1 if $len == 0;
        }
    } else {
        $w->{body} .= $w->{raw};
        $w->{raw} = '';
    }
    while (defined $w->{body} && $w->{body} =~ s/^([^\n]*)\n//) {
        push @{ $w->{lines} }, $1;
    }
    return 1;
}

sub watch_next {
    my ($w, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    while (!@{ $w->{lines} } && !$w->{ended} && time < $deadline) {
        _watch_fill($w, $deadline - time);
    }
    my $line = shift @{ $w->{lines} };
    return undef unless defined $line;
    return decode_json($line);
}

sub watch_status {
    my ($w, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    _watch_fill($w, $deadline - time) while !defined $w->{status} && !$w->{ended} && time < $deadline;
    return $w->{status};
}

sub hook_server {
    my ($port, $file, %o) = @_;
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
        Listen => 16, ReuseAddr => 1, Proto => 'tcp') or die "listen $port: $@\n";
    my $pid = fork // die "fork: $!\n";
    if ($pid) {
        close $srv;
        return $pid;
    }
    my $n = 0;
    my @hung;
    while (my $c = $srv->accept) {
        my $req = '';
        while ($req !~ /\r\n\r\n/) {
            my $got = sysread($c, my $buf, 65536) or last;
            $req .= $buf;
        }
        my ($head, $body) = split /\r\n\r\n/, $req, 2;
        my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
        my ($ct) = $head =~ /^Content-Type:\s*(.*?)\r?$/mi;
        $body //= '';
        while (defined $len && length $body < $len) {
            my $got = sysread($c, my $buf, 65536) or last;
            $body .= $buf;
        }
        if ($o{hang}) {
            push @hung, $c;
            next;
        }
        my $status = ++$n <= ($o{fail_first} // 0) ? 500 : 200;
        if (open my $fh, '>>', $file) {
            print $fh $JSON->encode({ status => $status, body => $body,
                content_type => $ct // '' }), "\n";
            close $fh;
        }
        print $c "HTTP/1.1 $status X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        close $c;
    }
    exit 0;
}

sub hook_bodies {
    my ($file) = @_;
    open my $fh, '<', $file or return ();
    return map { decode_json($_) } grep { /\S/ } <$fh>;
}

1;
