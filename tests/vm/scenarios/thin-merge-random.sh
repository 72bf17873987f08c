# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "thin-merge-random" (long suite): thin-merge with the guest killed at random moments
# of `rewind poll`'s thin finish (issue 19, proof 3): boots 2-11 each run `rewind poll` of a
# flagged thin merge and are killed SEED's delay after the console marker printed right before
# it; each next boot checks that the kill left no half state and that the next poll converges;
# boot 12 polls to the end. Under TCG commit 1 is on disk 96-171 ms after the marker, the
# messages and commit 3 follow within some 50 ms (docs/THIN.md): the delays spread over
# 95-179 ms.
# The story: tests/vm/lib/thin-merge-story.sh (TM_SEEDS).
VM_SCENARIO_SUITE=long
TM_SEEDS=10
TM_SPREAD_MS=85
TM_DELAY_BASE_MS=95
# shellcheck source=tests/vm/lib/thin-merge-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/thin-merge-story.sh"
