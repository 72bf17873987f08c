# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "sets-crash": the guest killed at 2 moments (seeds 1-2) during `rewind snapshot`,
# then the window's process killed inside the window (the guardian resumes the origins).
# The story and its checks: tests/vm/lib/sets-crash-story.sh. 50 kills: sets-crash-long.
SC_SEEDS=2
# shellcheck source=tests/vm/lib/sets-crash-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/sets-crash-story.sh"
