# Runs last: every token the authorization tests used (t/auth*.t,
# t/e2e-auth.t record them in var/test/auth-tokens) is looked for in every
# log under t/servroot*/ (error and access logs, whoever's test wrote
# them) and must not be found.  The one exception: t/auth-flow.t's debug
# run, where nginx itself dumps request headers (t/auth-flow.t checks the
# module's own lines there).  The list is emptied afterwards.
BEGIN { push @INC, 't/lib' }
use strict;
use warnings;
use Test::More;
use Cwd qw(getcwd);
use Registry::Auth qw(leaked_tokens);

my $list = getcwd() . '/var/test/auth-tokens';
my @tokens = Registry::Auth::remembered_tokens();

plan skip_all => 'no token recorded (run with the t/auth*.t files)' unless @tokens;

my @logs = grep { !m{/servroot-auth-flow-debug/} }
    glob(getcwd() . '/t/servroot*/logs/*.log');

ok scalar(@logs), scalar(@logs) . ' logs, ' . scalar(@tokens) . ' tokens';
my @leaks = leaked_tokens(\@tokens, @logs);
is scalar @leaks, 0, 'no token in any log'
    or diag join "\n", map { "$_->[1] in $_->[0]" } @leaks;

unlink $list;
done_testing;
