# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "thin-merge-crash" (long suite): thin-merge with the guest killed between every two
# steps of `rewind poll`'s thin finish: after its commit (boot 2), after the pool's `delete`
# (boot 3), after `set_transaction_id` before the second commit (boot 4); boot 5 polls to the
# end. Every boot converges and stock LVM agrees. The story: tests/vm/lib/thin-merge-story.sh.
VM_SCENARIO_SUITE=long
TM_KILLS=(thin-after-commit thin-after-delete thin-after-messages)
# shellcheck source=tests/vm/lib/thin-merge-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/thin-merge-story.sh"
