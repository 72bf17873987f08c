# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "sets-crash-long" (long suite): sets-crash with 50 kills (seeds 1-50).
VM_SCENARIO_SUITE=long
SC_SEEDS=50
# Spread over a whole turn (snapshot and delete), not only the snapshot.
SC_SPREAD_MS=15000
# shellcheck source=tests/vm/lib/sets-crash-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/sets-crash-story.sh"
