# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "thin-merge": a thin LV rolled back by `rewind early` (no LVM2 in the initramfs) to a
# thin snapshot stock `lvconvert --merge` flagged, and `rewind poll` finishing the merge as
# LVM's poller does. Two boots. The story and its checks: tests/vm/lib/thin-merge-story.sh.
TM_KILLS=()
# shellcheck source=tests/vm/lib/thin-merge-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/thin-merge-story.sh"
