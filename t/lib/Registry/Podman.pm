package Registry::Podman;

# podman and skopeo for the end-to-end tests, isolated under a servroot:
#
#   podman_setup($dir)       storage, auth file and temp dir under $dir;
#                            returns the podman command (a list) to use
#   run(CMD...)              (exit status, stdout + stderr), 120 s at most
#   ok_run($name, CMD...)    run, and a test that it exited 0
#   tar_image($dir, $text)   $dir/image.tar holding hello.txt = $text,
#                            for `podman import` (no network here)

use strict;
use warnings;
use Exporter qw(import);
use File::Path qw(make_path remove_tree);
use File::Temp ();
use Test::More;

our @EXPORT_OK = qw(podman_setup run ok_run tar_image);

sub podman_setup {
    my ($pod) = @_;
    remove_tree($pod);
    make_path("$pod/root", "$pod/tmp");
    $ENV{REGISTRY_AUTH_FILE} = "$pod/auth.json";
    $ENV{TMPDIR} = "$pod/tmp";
    # podman refuses a run root longer than 50 characters: a short one in /tmp
    my $runroot = File::Temp::tempdir('/tmp/regpod.XXXXXX', CLEANUP => 1);
    return ('podman', '--root', "$pod/root", '--runroot', $runroot,
        '--storage-driver', 'vfs', '--events-backend', 'file',
        '--cgroup-manager', 'cgroupfs');
}

sub run {
    my $cmd = join ' ', map { my $a = $_; $a =~ s/'/'\\''/g; "'$a'" } @_;
    my $out = `timeout 120 $cmd 2>&1`;
    return ($? >> 8, $out);
}

sub ok_run {
    my ($name, @cmd) = @_;
    my ($rc, $out) = run(@cmd);
    is $rc, 0, $name or diag $out;
    return $out;
}

sub tar_image {
    my ($pod, $text) = @_;
    my $ctx = "$pod/image";
    make_path($ctx);
    open my $fh, '>', "$ctx/hello.txt" or die "$ctx/hello.txt: $!\n";
    print $fh $text;
    close $fh;
    system('tar', '-C', $ctx, '-cf', "$pod/image.tar", 'hello.txt') == 0
        or die "tar failed\n";
    return "$pod/image.tar";
}

1;
