# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rewind-resume": power cut as soon as rewind has started the merge in the
# initramfs; the next boot resumes it and shows the old data at once.
# The story and its checks: tests/vm/lib/resume-story.sh.
RR_CUT=start
# shellcheck source=tests/vm/lib/resume-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/resume-story.sh"
