package Registry::Auth;

# Fixtures of the authorization tests (t/auth*.t, t/e2e-auth.t): users,
# projects and roles made with the admin CLI (scripts/registry user|
# project|policy), the tokens it printed, and the check that no log holds
# any of them.
#
#   $AuthHttpConfig, $AuthConfig
#                           Registry::Blobs' $HttpConfig and $Config with
#                           authorization on (the Redis-backed authorizer,
#                           as conf/nginx.conf sets it up); a test adds
#                           its registry_auth_cache
#   admin(ARGS...)          scripts/registry ARGS against the test Redis;
#                           returns stdout, dies on failure
#   setup_people()          the users and projects below, from scratch;
#                           returns {user => token}
#   editor($user, $project) a user with registry-editor in a project of
#                           its own, both from scratch; returns its token
#                           (remembered)
#   basic($user, $pass)     an Authorization header value
#   remember_tokens(@t)     adds tokens to var/test/auth-tokens (read by
#                           t/auth-zz-logs.t, which greps every log)
#   leaked_tokens(\@tokens, @files)
#                           [file, token-name] pairs for each log holding
#                           a token
#
# Users (all prefixed "auth", this suite's only):
#   authalice    registry-editor in aproj
#   authbob      registry-viewer in aproj
#   authcarol    registry-admin in aproj
#   authbuilder  system:image-builder in aproj
#   authdave     no role at all
#   authreg      cluster role system:registry; registry-editor in aother
#   authpruner   cluster role system:image-pruner
#   authself     cluster role self-provisioner
#   authroot     cluster role cluster-admin
# Projects: aproj (private), aother (private), apub (public); anew is
# deleted first (authself creates it by pushing).

use strict;
use warnings;
use Cwd qw(getcwd);
use Exporter qw(import);
use MIME::Base64 qw(encode_base64);
use File::Path qw(make_path);
use Registry::Harness qw(redis_cli);    # exported again, for the auth tests
use Registry::Blobs qw($HttpConfig $Config);

our @EXPORT_OK = qw(admin setup_people editor basic remember_tokens
    leaked_tokens redis_cli $AuthHttpConfig $AuthConfig);

our $AuthHttpConfig = $HttpConfig . "    registry_auth /_registry_auth;\n";
our $AuthConfig = $Config . <<'_EOC_';

    location = /_registry_auth {
        internal;
        registry_authorizer;
    }
_EOC_

our @USERS = qw(authalice authbob authcarol authbuilder authdave authreg
    authpruner authself authroot);
our @PROJECTS = qw(aproj aother apub anew);

sub _env {
    my $port = $ENV{TEST_NGINX_REDIS_PORT}
        or die "TEST_NGINX_REDIS_PORT is not set: run through scripts/test\n";
    return (REGISTRY_REDIS_PORT => $port);
}

# scripts/registry ARGS, stdout returned; with quiet => 1 in a leading
# hash, failures are ignored
sub admin {
    my $opt = ref $_[0] eq 'HASH' ? shift : {};
    my %env = _env();
    local @ENV{ keys %env } = values %env;
    my $cmd = join ' ', map { "'$_'" } getcwd() . '/scripts/registry', @_;
    my $out = `$cmd 2>/tmp/registry-auth-admin.$$`;
    my $rc = $?;
    my $err = do { local (@ARGV, $/) = "/tmp/registry-auth-admin.$$"; <> } // '';
    unlink "/tmp/registry-auth-admin.$$";
    die "scripts/registry @_[0 .. 1] failed: $err" if $rc != 0 && !$opt->{quiet};
    chomp $out;
    return $out;
}

sub setup_people {
    admin({ quiet => 1 }, 'user', 'delete', $_) for @USERS;
    admin({ quiet => 1 }, 'project', 'delete', $_) for @PROJECTS;

    my %t;
    $t{$_} = admin('user', 'add', $_) for @USERS;
    admin('project', 'add', 'aproj');
    admin('project', 'add', 'aother');
    admin('project', 'add', 'apub', '--public');

    admin('policy', 'add-role-to-user', 'registry-editor', 'authalice', '-n', 'aproj');
    admin('policy', 'add-role-to-user', 'registry-viewer', 'authbob', '-n', 'aproj');
    admin('policy', 'add-role-to-user', 'registry-admin', 'authcarol', '-n', 'aproj');
    admin('policy', 'add-role-to-user', 'system:image-builder', 'authbuilder', '-n', 'aproj');
    admin('policy', 'add-role-to-user', 'registry-editor', 'authreg', '-n', 'aother');
    admin('policy', 'add-cluster-role-to-user', 'system:registry', 'authreg');
    admin('policy', 'add-cluster-role-to-user', 'system:image-pruner', 'authpruner');
    admin('policy', 'add-cluster-role-to-user', 'self-provisioner', 'authself');
    admin('policy', 'add-cluster-role-to-user', 'cluster-admin', 'authroot');

    for my $u (@USERS) {
        die "no token for $u\n" unless $t{$u} =~ /^sha256~[A-Za-z0-9_-]{43}$/;
    }
    remember_tokens(values %t);
    return \%t;
}

sub editor {
    my ($user, $project) = @_;
    admin({ quiet => 1 }, 'user', 'delete', $user);
    admin({ quiet => 1 }, 'project', 'delete', $project);
    my $token = admin('user', 'add', $user);
    remember_tokens($token);
    admin('project', 'add', $project);
    admin('policy', 'add-role-to-user', 'registry-editor', $user, '-n', $project);
    return $token;
}

sub basic {
    my ($user, $pass) = @_;
    return 'Basic ' . encode_base64("$user:$pass", '');
}

sub _token_file { getcwd() . '/var/test/auth-tokens' }

sub remember_tokens {
    my $f = _token_file();
    (my $d = $f) =~ s{/[^/]+$}{};
    make_path($d);
    open my $fh, '>>', $f or die "$f: $!\n";
    chmod 0600, $f;
    print $fh "$_\n" for @_;
    close $fh;
}

sub remembered_tokens {
    open my $fh, '<', _token_file() or return ();
    my %seen;
    return grep { /\S/ && !$seen{$_}++ } map { chomp; $_ } <$fh>;
}

# Each token is looked for whole and as its distinctive part (after
# "sha256~"), and as the base64 of "user:token" would show it.
sub leaked_tokens {
    my ($tokens, @files) = @_;
    my @found;
    for my $f (@files) {
        open my $fh, '<:raw', $f or next;
        local $/;
        my $log = <$fh> // '';
        close $fh;
        for my $t (@$tokens) {
            (my $core = $t) =~ s/^sha256~//;
            next if length $core < 8;
            push @found, [$f, substr($t, 0, 10) . '...']
                if index($log, $core) >= 0
                || index($log, encode_base64("anything:$t", '')) >= 0;
        }
    }
    return @found;
}

1;
