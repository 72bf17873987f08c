# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "poll-guest-kill-reload": the whole guest dies during `rewind poll`'s finish, after
# the metadata commit and the origin's reload, before the leftover devices are removed; the
# next boot converges (the quick suite's poll-guest-kill cuts one step earlier).
# The story and its checks: tests/vm/lib/guest-kill-story.sh.
VM_SCENARIO_SUITE=long
PGK_FAILPOINT=poll-after-reload
# shellcheck source=tests/vm/lib/guest-kill-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/guest-kill-story.sh"
