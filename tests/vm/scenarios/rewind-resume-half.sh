# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rewind-resume-half": power cut once half of the merge is done (watched from the
# root); the next boot resumes it and shows the old data at once.
# The story and its checks: tests/vm/lib/resume-story.sh.
VM_SCENARIO_SUITE=long
RR_CUT=50
# shellcheck source=tests/vm/lib/resume-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/resume-story.sh"
