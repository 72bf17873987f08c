# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "poll-guest-kill": the whole guest dies during `rewind poll`'s finish, right after
# the metadata commit and before the origin's reload; the next boot converges (invariant 8).
# The story and its checks: tests/vm/lib/guest-kill-story.sh.
PGK_FAILPOINT=poll-after-commit
# shellcheck source=tests/vm/lib/guest-kill-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/guest-kill-story.sh"
