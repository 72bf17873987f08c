#!/usr/bin/env bash
# Runs every test tier: lints, unit and host tests (cargo), fuzzing (bounded), VM scenarios.
# Needs root for the host and VM tiers. REWIND_SKIP_VM=1 skips the VM tier (for quick local runs);
# VM_SCENARIOS="anchor rewind-cmdline" runs only those scenarios in it.
# Ends with a summary table (tier, passed, failed, skipped, time) counted from the run's own
# output (cargo test's result lines, the hook tests' count, the fuzz targets' lines, the VM
# scenarios' PASS/FAIL lines; kept in target/test-run/). A failed step stops the run: the
# summary says which, and the exit status is non-zero. Progress (tests/progress.sh): "step N of
# M" lines; a status line on a terminal, plain lines otherwise (REWIND_PROGRESS=plain).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "tests/run.sh: run as root, or with sudo (the host tier uses loop devices, the VM tier builds disks)" >&2
  exit 2
fi

# shellcheck source=tests/progress.sh
. tests/progress.sh
pg_setup
# shellcheck source=tests/toolchain.sh
. tests/toolchain.sh
logs=$(pwd -P)/target/test-run
rm -rf "$logs"
mkdir -p "$logs"
# cargo draws its own progress bar on a terminal; in a log it would only add lines.
cargo_quiet=(--quiet)
pg_tty && cargo_quiet=()

steps=8 n=0 t_run=$(date +%s) t_step=$(date +%s) failed_line=0 titles=() times=()
# step TITLE: the next step starts (and the one before ends).
# shellcheck disable=SC2034 # t_step: read by the EXIT trap
step() {
  ((n == 0)) || times[n]=$(($(date +%s) - t_step))
  n=$((n + 1)) t_step=$(date +%s)
  titles[n]=$1
  printf '\n== %s step %s of %s: %s\n' "$(pg_stamp)" "$n" "$steps" "$1"
}
trap 'failed_line=$LINENO' ERR
trap 'rc=$?; set +e; times[n]=$(($(date +%s) - t_step)); summary "$rc" >"$logs/summary.txt"; cat "$logs/summary.txt"; exit "$rc"' EXIT

# command_at LINE: the command of this script that ends on LINE (continued lines joined).
command_at() {
  local first=$1
  while ((first > 1)) && sed -n "$((first - 1))p" "$0" | grep -qE '(\||\\|&&)[[:space:]]*$'; do
    first=$((first - 1))
  done
  sed -n "${first},${1}p" "$0" | sed 's/^[[:space:]]*//' | tr '\n' ' ' | sed 's/ *$//'
}

# hide_successes: libtest's output without the list of passed tests --show-output adds (what
# those tests printed stays).
hide_successes() {
  awk '/^successes:$/ { s = 1; next } /^failures:$|^test result: / { s = 0 }
    s && /^$|^---- .* stdout ----$|^    [A-Za-z_:0-9]+$/ { next } { print; fflush() }'
}

# summary RC: the table, from the logs of this run.
# shellcheck disable=SC2016 # awk programs and backquotes in single quotes
summary() {
  local rc=$1 tier p fl sk t failed_cmd=''
  ((rc == 0 || failed_line == 0)) || failed_cmd=$(command_at "$failed_line")
  local -a row_step row_tier row_p row_f row_s row_t
  add() { row_step+=("$1") row_tier+=("$2") row_p+=("$3") row_f+=("$4") row_s+=("$5") row_t+=("$6"); }
  # A step without counts: ok, FAILED, or not run.
  plain_row() {
    if (($1 > n)); then add "$1" "$2" "not run" - - -
    elif ((rc != 0 && $1 == n)); then add "$1" "$2" - FAILED - "$(pg_fmt "${times[$1]}")"
    else add "$1" "$2" ok - - "$(pg_fmt "${times[$1]}")"; fi
  }
  # A step with counts, parsed from its log by the awk program PARSE: it prints rows of
  # "TIER P F S [T]", tab-separated (T: the step's time when left out).
  counted_row() {
    local step=$1 log=$2 parse=$3 rows=${#row_step[@]}
    if (($1 > n)); then add "$step" "$4" "not run" - - -; return; fi
    while IFS=$'\t' read -r tier p fl sk t; do
      add "$step" "$tier" "$p" "$fl" "$sk" "${t:-$(pg_fmt "${times[$step]}")}"
    done < <(awk "$parse" "$log" 2>/dev/null)
    # Nothing counted (the step failed before its tests ran).
    ((${#row_step[@]} > rows)) || add "$step" "$4" - FAILED - "$(pg_fmt "${times[$step]}")"
  }
  plain_row 1 "dependencies"
  if ((n > 2 || (n == 2 && rc == 0))); then
    add 2 "lints: fmt, clippy, shellcheck" 3 0 0 "$(pg_fmt "${times[2]}")"
  elif ((n == 2)); then
    case $failed_cmd in "cargo fmt"*) p=0 ;; "cargo clippy"*) p=1 ;; *) p=2 ;; esac
    add 2 "lints: fmt, clippy, shellcheck" "$p" 1 0 "$(pg_fmt "${times[2]}")"
  else
    add 2 "lints: fmt, clippy, shellcheck" "not run" - - -
  fi
  plain_row 3 "release build"
  plain_row 4 "test build"
  # cargo test: "Running tests/host_*.rs" starts a host-tier binary, any other "Running" or
  # "Doc-tests" a unit one; "test result:" lines carry the counts and libtest's time; a test
  # that skips itself passes, and says "SKIP" or "SKIPPED" (shown by --show-output).
  counted_row 5 "$logs/cargo-test.log" '
    /^ +Running / { tier = ($2 ~ /^tests\/host_/) ? "host" : "unit"; bins[tier]++ }
    /^ +Doc-tests / { tier = "unit"; bins[tier]++ }
    /^SKIP(PED)? / { skip[tier]++ }
    /^test result: / {
      for (i = 1; i < NF; i++) {
        if ($(i + 1) ~ /^passed;?$/) p[tier] += $i
        if ($(i + 1) ~ /^failed;?$/) f[tier] += $i
        if ($(i + 1) ~ /^ignored;?$/) ign[tier] += $i
        if ($i == "in") { sub(/s$/, "", $(i + 1)); secs[tier] += $(i + 1) }
      }
    }
    END {
      for (t = 1; t <= 2; t++) {
        tier = t == 1 ? "unit" : "host"
        if (!(tier in bins)) continue
        printf "%s: cargo test, %d binaries\t%d\t%d\t%d\t%d:%02d\n", tier, bins[tier],
          p[tier] - skip[tier], f[tier], ign[tier] + skip[tier], secs[tier] / 60, secs[tier] % 60
      }
    }' "unit and host: cargo test"
  counted_row 6 "$logs/hooks.log" '
    / passed, [0-9]+ failed, [0-9]+ skipped$/ { line = $1 "\t" $3 "\t" $5 }
    END { if (line != "") print "hooks: tests/hooks\t" line }' "hooks: tests/hooks"
  counted_row 7 "$logs/fuzz.log" '
    / no crash$/ { p++ }
    /: CRASH / { f++ }
    END { if (p + f) printf "fuzz: %d targets, %s s each\t%d\t%d\t0\n", p + f, ENVIRON["FUZZ_SECONDS"] ? ENVIRON["FUZZ_SECONDS"] : 20, p, f }' \
    "fuzz: tests/fuzz.sh"
  if [ "${REWIND_SKIP_VM:-0}" = 1 ]; then
    add 8 "VM: not run (REWIND_SKIP_VM=1)" - - - -
  else
    counted_row 8 "$logs/vm.log" '
      /^PASS / { p++ }
      /^FAIL / { f++ }
      /^vm: [0-9]+ scenarios?: / { total = $2 }
      END { if (total == "") total = p + f; printf "VM: %d scenarios\t%d\t%d\t%d\n", total, p, f, total - p - f }' \
      "VM: tests/vm/run.sh"
  fi

  printf '\n== summary: %s steps in %s; counts from the run'"'"'s output (logs: %s)\n' \
    "$steps" "$(pg_fmt $(($(date +%s) - t_run)))" "$logs"
  printf '%4s  %-40s %7s %7s %8s %8s\n' step tier passed failed skipped time
  local i tp=0 tf=0 ts=0
  for i in "${!row_step[@]}"; do
    printf '%4s  %-40s %7s %7s %8s %8s\n' "${row_step[i]}" "${row_tier[i]}" "${row_p[i]}" \
      "${row_f[i]}" "${row_s[i]}" "${row_t[i]}"
    [[ ${row_p[i]} =~ ^[0-9]+$ ]] && tp=$((tp + row_p[i]))
    [[ ${row_f[i]} =~ ^[0-9]+$ ]] && tf=$((tf + row_f[i]))
    [[ ${row_s[i]} =~ ^[0-9]+$ ]] && ts=$((ts + row_s[i]))
  done
  printf '%4s  %-40s %7s %7s %8s %8s\n' "" total "$tp" "$tf" "$ts" "$(pg_fmt $(($(date +%s) - t_run)))"
  echo "(time: each step's wall time; for unit and host, the time libtest reports for their tests)"
  if ((rc != 0)); then
    printf 'result: FAIL: step %s of %s (%s) failed, exit status %s' "$n" "$steps" "${titles[n]}" "$rc"
    ((n + 1 == steps)) && printf '; step %s not run' "$steps"
    ((n + 1 < steps)) && printf '; steps %s-%s not run' $((n + 1)) "$steps"
    echo
    [ -z "$failed_cmd" ] || printf '    the command (tests/run.sh line %s): %s\n' "$failed_line" "$failed_cmd"
  else
    local msg="result: PASS"
    [ "${REWIND_SKIP_VM:-0}" = 1 ] && msg+=", without the VM tier (REWIND_SKIP_VM=1)"
    if ((ts > 0)); then
      echo "$msg, but $ts skipped:"
      grep -hE '^(skip |SKIP(PED)? )' "$logs"/*.log | sed 's/^/    /' || true
    else
      echo "$msg; nothing skipped"
    fi
  fi
}

step "dependencies"
bash tests/deps.sh

step "format and lints"
cargo fmt --all -- --check
# gen-docs: the man page and completion generator (src/bin/rewind-gen-docs.rs) too.
cargo clippy --all-targets --features gen-docs "${cargo_quiet[@]}" -- -D warnings
# Every shell file git tracks: a shell shebang, a `.sh` name (the sourced scenarios, story
# libraries and helpers have no shebang), or a `# shellcheck shell=` line at the top. Each
# sourced file names its shell in that line, so shellcheck checks it as what it is.
mapfile -t scripts < <(git ls-files | while read -r f; do
  [ -f "$f" ] || continue
  case $f in *.md) continue ;; esac
  if [[ $f == *.sh ]] || head -c 64 "$f" | grep -qE '^#!.*(ba|da)?sh' ||
    head -n 3 "$f" | grep -q '^# shellcheck shell='; then
    echo "$f"
  fi
done)
unnamed=()
for f in "${scripts[@]}"; do
  head -c 64 "$f" | grep -q '^#!' || head -n 3 "$f" | grep -q '^# shellcheck shell=' || unnamed+=("$f")
done
if ((${#unnamed[@]})); then
  echo "shellcheck: no shebang and no '# shellcheck shell=' line: ${unnamed[*]}" >&2
  exit 1
fi
shellcheck -x --source-path=SCRIPTDIR -S style "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} shell files clean"

step "release build (static)"
cargo build --release "${cargo_quiet[@]}"
release_bin="$PWD/target/x86_64-unknown-linux-gnu/release/rewind"
ls -l "$release_bin"

step "building the tests"
cargo test --no-run "${cargo_quiet[@]}"

step "unit and host tests"
# cargo not quiet: it names each test binary as it starts it ("Running tests/host_poll.rs");
# libtest quiet (a dot per test), with --show-output for the SKIP lines of tests that skip
# themselves (the terminal is spared the list of passed tests; the log keeps it); and
# --no-fail-fast, so that every binary runs and counts.
# The filter-regex test against LVM's own engine (src/lvm/devsel/rx.rs, ignored without a case
# file): cases judged by libdevmapper's dm_regex_* (tests/tools/rxcases.c, libdevmapper-dev).
cc -o "$logs/rxcases" tests/tools/rxcases.c -ldevmapper
"$logs/rxcases" 5000 >"$logs/rx-cases.txt" 2>/dev/null
REWIND_RX_CASES="$logs/rx-cases.txt" REWIND_RELEASE_BIN="$release_bin" \
  cargo test --no-fail-fast -- --quiet --show-output --include-ignored 2>&1 |
  tee "$logs/cargo-test.log" | hide_successes

step "initramfs hooks (dracut, mkinitcpio, initramfs-tools) against recording fakes; man pages, completions, the Debian package"
REWIND_RELEASE_BIN="$release_bin" bash tests/hooks/run.sh 2>&1 | tee "$logs/hooks.log"

step "fuzzing (FUZZ_SECONDS=${FUZZ_SECONDS:-20} per target)"
bash tests/fuzz.sh | tee "$logs/fuzz.log"
# The sanitizer build (~1 GB) is not needed again in this run; the VM tier needs the disk space.
# FUZZ_KEEP_BUILD=1 keeps it for the next run.
[ "${FUZZ_KEEP_BUILD:-0}" = 1 ] || rm -rf "${CARGO_TARGET_DIR:-target}/fuzz"

if [ "${REWIND_SKIP_VM:-0}" = 1 ]; then
  step "VM tier skipped (REWIND_SKIP_VM=1)"
else
  step "VM tier${VM_SCENARIOS:+ (VM_SCENARIOS: $VM_SCENARIOS)}"
  bash tests/vm/run.sh 2>&1 | tee "$logs/vm.log"
fi
