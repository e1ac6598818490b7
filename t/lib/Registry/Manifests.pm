package Registry::Manifests;

# Manifests as text, byte for byte what a test sends and expects back:
# the one builder of t/manifests.t, t/e2e.t (an OCI layout) and
# Registry::Images (which adds configs made from options).
#
#   d($bytes)                 "sha256:<hex>"
#   desc($type, $bytes, $extra)
#                             a descriptor of $bytes; $extra (',"k":v')
#                             is added before the closing brace
#   image($type, $config_type, $config, [$layer_type, $bytes]...)
#                             an image manifest
#   index_of($type, [$child_type, $child_bytes, $extra]...)
#                             an index (OCI) or manifest list (Docker)
#   $OCI_MANIFEST $OCI_INDEX $OCI_CONFIG $OCI_LAYER $OCI_EMPTY
#   $D_MANIFEST $D_LIST $D_CONFIG $D_LAYER      media types

use strict;
use warnings;
use Exporter qw(import);
use Digest::SHA qw(sha256_hex);

our @EXPORT_OK = qw(d desc image index_of $OCI_MANIFEST $OCI_INDEX
    $OCI_CONFIG $OCI_LAYER $OCI_EMPTY $D_MANIFEST $D_LIST $D_CONFIG $D_LAYER);

our $OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
our $OCI_INDEX    = 'application/vnd.oci.image.index.v1+json';
our $OCI_CONFIG   = 'application/vnd.oci.image.config.v1+json';
our $OCI_LAYER    = 'application/vnd.oci.image.layer.v1.tar+gzip';
our $OCI_EMPTY    = 'application/vnd.oci.empty.v1+json';
our $D_MANIFEST   = 'application/vnd.docker.distribution.manifest.v2+json';
our $D_LIST       = 'application/vnd.docker.distribution.manifest.list.v2+json';
our $D_CONFIG     = 'application/vnd.docker.container.image.v1+json';
our $D_LAYER      = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

sub d { 'sha256:' . sha256_hex($_[0]) }

sub desc {
    my ($type, $data, $extra) = @_;
    return qq({"mediaType":"$type","digest":"@{[d($data)]}","size":)
        . length($data) . ($extra // '') . '}';
}

sub image {
    my ($type, $ctype, $config, @layers) = @_;
    return qq({"schemaVersion":2,"mediaType":"$type","config":)
        . desc($ctype, $config) . ',"layers":['
        . join(',', map { desc(@$_) } @layers) . ']}';
}

sub index_of {
    my ($type, @children) = @_;
    return qq({"schemaVersion":2,"mediaType":"$type","manifests":[)
        . join(',', map { desc(@$_) } @children) . ']}';
}

1;
