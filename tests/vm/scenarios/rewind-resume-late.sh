# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rewind-resume-late": power cut when 90 % of the merge is done; the next boot resumes
# it and shows the old data at once.
# The story and its checks: tests/vm/lib/resume-story.sh.
VM_SCENARIO_SUITE=long
RR_CUT=90
# shellcheck source=tests/vm/lib/resume-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/resume-story.sh"
