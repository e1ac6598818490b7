package Registry::Podman;

# podman and skopeo for the end-to-end tests (t/e2e*.t), isolated under a
# servroot: nothing of the machine's images, logins or caches is touched.
#
#   need_tools(@names)       skip the whole file, saying so, when one of
#                            these commands is not installed
#   podman_setup($dir)       storage (vfs), run root, auth file ($dir/
#                            auth.json, REGISTRY_AUTH_FILE), config, data
#                            and temp dirs under $dir; both tools run in a
#                            mount namespace where /var/lib/containers
#                            (skopeo's blob-info cache as root) is
#                            $dir/varlib, when the sandbox allows one.
#                            Returns (\@podman, \@skopeo): the commands
#   run(CMD...)              (exit status, stdout + stderr), 180 s at most
#   ok_run($name, CMD...)    run, and a test that it exited 0; the output
#   tar_image($dir, $text)   $dir/image.tar holding hello.txt = $text,
#                            for `podman import` (no network here)

use strict;
use warnings;
use Exporter qw(import);
use File::Path qw(make_path remove_tree);
use File::Temp ();
use Test::More;
use Registry::Harness qw(write_file);

our @EXPORT_OK = qw(need_tools podman_setup run ok_run tar_image);

sub need_tools {
    for my $tool (@_) {
        plan skip_all => "$tool is not installed (apt-get install $tool)"
            unless grep { -x "$_/$tool" } split /:/, $ENV{PATH} // '';
    }
}

sub podman_setup {
    my ($pod) = @_;
    remove_tree($pod);
    make_path("$pod/root", "$pod/tmp", "$pod/varlib");
    write_file("$pod/auth.json", '{}');
    $ENV{REGISTRY_AUTH_FILE} = "$pod/auth.json";
    $ENV{TMPDIR} = "$pod/tmp";
    $ENV{XDG_CONFIG_HOME} = "$pod/config";
    $ENV{XDG_DATA_HOME} = "$pod/data";
    my @ns = ('unshare', '-m', 'sh', '-c',
        'mount --bind "$0" /var/lib/containers && exec "$@"', "$pod/varlib");
    if ((run(@ns, 'true'))[0] != 0) {
        diag 'no mount namespace here: skopeo may use /var/lib/containers/cache';
        @ns = ();
    }
    # podman refuses a run root longer than 50 characters: a short one in /tmp
    my $runroot = File::Temp::tempdir('/tmp/regpod.XXXXXX', CLEANUP => 1);
    return ([@ns, 'podman', '--root', "$pod/root", '--runroot', $runroot,
        '--storage-driver', 'vfs', '--events-backend', 'file',
        '--cgroup-manager', 'cgroupfs'], [@ns, 'skopeo']);
}

sub run {
    my $cmd = join ' ', map { my $a = $_; $a =~ s/'/'\\''/g; "'$a'" } @_;
    my $out = `timeout 180 $cmd 2>&1`;
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
    write_file("$ctx/hello.txt", $text);
    system('tar', '-C', $ctx, '-cf', "$pod/image.tar", 'hello.txt') == 0
        or die "tar failed\n";
    return "$pod/image.tar";
}

1;
