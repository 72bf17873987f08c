# shellcheck shell=bash
# The man pages and shell completions: generated from the clap definitions (rewind-gen-docs),
# installed by install.sh where each tool looks, rendered by man without a warning, loaded by
# bash, zsh and fish, which complete a subcommand and, from stock lvs (a fake here), snapshot
# names.

# gen_docs: runs the generator into $T/docs (cargo builds it once), then install.sh into $T/dest.
gen_docs() {
    command -v cargo > /dev/null || skip "no cargo"
    (cd "$REPO" && cargo run --quiet --features gen-docs --bin rewind-gen-docs -- "$T/docs") \
        > "$T/gen.out" 2>&1 || { cat "$T/gen.out"; return 1; }
    fake_rewind "$T/bin/rewind"
    sh "$REPO/install.sh" DESTDIR="$T/dest" REWIND_BIN="$T/bin/rewind" REWIND_DOCS="$T/docs" \
        ZSH_COMPLETIONS=/usr/share/zsh/vendor-completions > /dev/null
}

# A fake `lvs` that lists two snapshots the way the completions ask for them.
fake_lvs() {
    mkdir -p "$T/bin"
    printf '#!/bin/sh\nprintf "  vg0/pre\\n  vg1/nightly\\n"\n' > "$T/bin/lvs"
    chmod +x "$T/bin/lvs"
}

test_docs_a_page_per_subcommand() {
    gen_docs || return 1
    local bin=${REWIND_RELEASE_BIN:-$REPO/target/x86_64-unknown-linux-gnu/release/rewind} sub subs
    [ -x "$bin" ] || skip "no release binary ($bin)"
    # The subcommands `rewind --help` lists (clap's own `help` aside).
    subs=$("$bin" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p' | grep -vx help)
    [ -n "$subs" ] || fail "no subcommand in rewind --help"
    for sub in $subs; do
        [ -f "$T/dest/usr/share/man/man8/rewind-$sub.8" ] || fail "no page rewind-$sub.8"
        grep -qF "rewind\\-${sub//-/\\-}(8)" "$T/dest/usr/share/man/man8/rewind.8" ||
            fail "rewind(8) does not list rewind-$sub(8)"
    done
    eq "pages in man8: rewind.8 and one per subcommand" "$(($(wc -w <<< "$subs") + 1))" \
        "$(find "$T/dest/usr/share/man/man8" -name 'rewind*.8' | wc -l)"
    check
}

test_docs_man_renders_without_warnings() {
    command -v man > /dev/null || skip "no man (man-db)"
    gen_docs || return 1
    local page err n=0
    for page in "$T"/dest/usr/share/man/man*/*; do
        n=$((n + 1))
        err=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 > "$T/page.txt") || fail "man -l ${page##*/} failed"
        eq "man --warnings on ${page##*/}" "" "$err"
        [ -s "$T/page.txt" ] || fail "${page##*/} renders empty"
    done
    ((n >= 4)) || fail "only $n pages installed"
    has "rewind-boot(7) names rd.rewind" 'rd\.rewind=VG/SNAPSHOT' \
        "$(MANWIDTH=80 man -l "$T/dest/usr/share/man/man7/rewind-boot.7" 2> /dev/null)"
    check
}

test_docs_bash_completes() {
    gen_docs || return 1
    fake_lvs
    # complete LINE: what bash's completion function for rewind offers at the end of LINE.
    # shellcheck disable=SC2016 # expanded by the inner bash
    local script='. "$1"; f=$(complete -p rewind | sed "s/.* -F \([^ ]*\) .*/\1/")
        read -ra COMP_WORDS <<< "$2"; [[ $2 == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) COMP_LINE=$2 COMP_POINT=${#2}
        "$f" rewind "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"'
    local f=$T/dest/usr/share/bash-completion/completions/rewind
    c() { PATH=$T/bin:$PATH bash --norc --noprofile -c "$script" bash "$f" "$1" 2>&1; }
    eq "bash: rewind roll" rollback "$(c 'rewind roll')"
    eq "bash: rewind check-c" check-config "$(c 'rewind check-c')"
    same_lines "bash: rewind rollback (snapshot names)" $'vg0/pre\nvg1/nightly' "$(c 'rewind rollback ')"
    eq "bash: rewind -v cancel vg0/" vg0/pre "$(c 'rewind -v cancel vg0/')"
    same_lines "bash: rewind rollback --mode (its values, not names)" $'origin\nsnapshot' "$(c 'rewind rollback --mode ')"
    check
}

test_docs_zsh_completes() {
    command -v zsh > /dev/null || skip "no zsh (tests/deps.sh installs it)"
    gen_docs || return 1
    fake_lvs
    local d=$T/dest/usr/share/zsh/vendor-completions
    c() { PATH=$T/bin:$PATH zsh -f "$REPO/tests/hooks/zsh-complete.zsh" "$d" "$1" 2>&1; }
    eq "zsh: rewind roll" rollback "$(c 'rewind roll')"
    same_lines "zsh: rewind rollback (snapshot names)" $'vg0/pre\nvg1/nightly' "$(c 'rewind rollback ')"
    same_lines "zsh: rewind rollback --mode (its values)" $'origin\nsnapshot' "$(c 'rewind rollback --mode ')"
    check
}

test_docs_fish_completes() {
    command -v fish > /dev/null || skip "no fish (tests/deps.sh installs it)"
    gen_docs || return 1
    fake_lvs
    # fish loads a command's completions from fish_complete_path when the command exists.
    # shellcheck disable=SC2016 # expanded by fish
    c() {
        HOME=$T XDG_CONFIG_HOME=$T/config XDG_DATA_HOME=$T/data PATH=$T/bin:$PATH fish --no-config -c \
            'set -p fish_complete_path $argv[1]; complete -C $argv[2]' \
            "$T/dest/usr/share/fish/vendor_completions.d" "$1" 2>&1 | cut -f1
    }
    eq "fish: rewind roll" rollback "$(c 'rewind roll')"
    same_lines "fish: rewind rollback (snapshot names)" $'vg0/pre\nvg1/nightly' "$(c 'rewind rollback ')"
    same_lines "fish: rewind rollback --mode (its values)" $'origin\nsnapshot' "$(c 'rewind rollback --mode ')"
    check
}
