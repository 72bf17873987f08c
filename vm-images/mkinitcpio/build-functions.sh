# shellcheck shell=bash
# mkinitcpio's build functions, as its install hooks call them: this project's implementation of
# what mkinitcpio's `functions` file documents and does, for the test generator
# (vm-images/build-initramfs-mkinitcpio.sh). Sourced by bash running in a chroot of the guest
# root, as the real tool runs: paths are the root's own, the image is built under $BUILDROOT.
#
# Environment: BUILDROOT (the image tree), KERNELVERSION, HOOKS_DIR (install/NAME and
# hooks/NAME), WRITTEN (a file: every image path an add_* call wrote is appended, resolved through
# the image's own links: bin, sbin, lib...), SYSTEMD_IMAGE=1 in an image whose /init is systemd
# (add_systemd_unit is defined there only, as the real systemd hook defines it).
#
# Implemented: map, msg, msg2, plain, quiet, warning, error, add_dir, add_symlink, add_file
# (SRC - reads standard input), add_binary (an ELF with every library ldd names; a script as
# it is), add_module (modinfo's file, depends and softdeps; NAME? optional), add_udev_rule
# (the file and every program its RUN/IMPORT{program}/ENV{REMOVE_CMD} keys run), add_full_dir,
# add_runscript, add_systemd_unit (the unit, its drop-ins, Requires/OnFailure units, Exec*
# programs, the .wants links that pull it in, its .requires units), add_systemd_drop_in.

build_errors=0
declare -A _added_modules=()

_fmt() {
    # shellcheck disable=SC2059
    printf "$@"
}
msg() { printf '==> %s\n' "$(_fmt "$@")" >&2; }
msg2() { printf '  -> %s\n' "$(_fmt "$@")" >&2; }
plain() { printf '    %s\n' "$(_fmt "$@")" >&2; }
quiet() { :; }
warning() { printf '==> WARNING: %s\n' "$(_fmt "$@")" >&2; }
error() {
    printf '==> ERROR: %s\n' "$(_fmt "$@")" >&2
    build_errors=$((build_errors + 1))
    return 1
}

map() {
    local f=$1 r=0 a
    shift
    for a in "$@"; do
        "$f" "$a" || r=1
    done
    return "$r"
}

# The image path PATH resolves to, through the image's own directory links; logged to $WRITTEN.
_written() {
    local d
    d=$(readlink -m "$BUILDROOT$(dirname "$1")")
    printf '%s/%s\n' "${d#"$BUILDROOT"}" "$(basename "$1")" >>"$WRITTEN"
}

# The missing parent directories of image path DEST, made as add_dir makes them.
_parents() {
    local d
    d=$(dirname "$1")
    [[ -d $BUILDROOT$d ]] && return 0
    _parents "$d"
    add_dir "$d"
}

add_dir() { # add_dir PATH [MODE]
    [[ $1 == /?* ]] || return 1
    [[ -d $BUILDROOT$1 ]] && return 0
    install -dm"${2:-755}" "$BUILDROOT$1"
    _written "$1"
}

add_symlink() { # add_symlink NAME [TARGET]: TARGET defaults to where NAME points in the root
    local name=$1 target=${2:-$1} linkobject
    if [[ $name == "$target" ]]; then
        linkobject=$(readlink "$target") || { error "invalid symlink: '%s'" "$name"; return 1; }
        if [[ $linkobject != */* && ! -L $(dirname "$name")/$linkobject ]]; then
            target=$linkobject
        else
            target=$(realpath -eq -- "$target") || { error "invalid symlink: '%s'" "$name"; return 1; }
        fi
    elif [[ -L $target ]]; then
        target=$(realpath -eq -- "$target")
    fi
    add_dir "$(dirname "$name")"
    ln -sfn "$target" "$BUILDROOT$name"
    _written "$name"
}

add_file() { # add_file SRC [DEST [MODE]]; SRC - is standard input (DEST and MODE needed)
    local src=$1 dest=${2:-$1} mode=${3:-} real
    if [[ $src == - ]]; then
        [[ -n $mode && $dest != - ]] || { error "add_file -: no destination or mode"; return 1; }
        _parents "$dest"
        rm -f "$BUILDROOT$dest"
        install -m"$mode" /dev/stdin "$BUILDROOT$dest"
        _written "$dest"
        return 0
    fi
    [[ -f $src ]] || { error "file not found: '%s'" "$src"; return 1; }
    if [[ -L $src ]]; then
        real=$(realpath -- "$src")
        if [[ $real != "$dest" ]]; then
            add_file "$real" "$real" "$mode"
            add_symlink "$dest" "$src"
            return
        fi
    fi
    _parents "$dest"
    if [[ -z $mode ]]; then
        cp --remove-destination --preserve=mode "$src" "$BUILDROOT$dest"
    else
        rm -f "$BUILDROOT$dest"
        install -m"$mode" "$src" "$BUILDROOT$dest"
    fi
    _written "$dest"
}

add_binary() { # add_binary SRC [DEST [MODE]]
    local bin=$1 dest=${2:-} mode=${3:-} lib out
    if [[ $bin != /* ]]; then
        bin=$(type -P "$bin") || { error "binary not found: '%s'" "$1"; return 1; }
    fi
    add_file "$bin" "${dest:-$bin}" "$mode" || return 1
    # ldd fails on a static binary or a script: nothing more to add then.
    out=$(ldd "$bin" 2>/dev/null) || return 0
    while read -r lib; do
        [[ -e $BUILDROOT$lib ]] || add_file "$lib" "$lib"
    done < <(sed -nE 's@^(.* )?(/[^ ]+) \(0x[0-9a-f]+\)$@\2@p' <<<"$out")
}

add_module() { # add_module NAME[?]
    local name=${1%\?} optional=0 file dep
    [[ $1 == *\? ]] && optional=1
    name=${name%.ko*}
    name=${name//-/_}
    [[ -n ${_added_modules[$name]:-} ]] && return 0
    file=$(modinfo -k "$KERNELVERSION" -F filename "$name" 2>/dev/null | head -n1) || true
    if [[ $file != /* ]]; then
        ((optional)) && return 0
        error "module not found: '%s'" "$name"
        return 1
    fi
    _added_modules[$name]=1
    for dep in $(modinfo -k "$KERNELVERSION" -F depends "$name" | tr ',' ' '); do
        add_module "$dep"
    done
    for dep in $(modinfo -k "$KERNELVERSION" -F softdep "$name" | tr ' ' '\n' | grep -v ':$' || true); do
        add_module "$dep?"
    done
    add_file "$file" "/usr/lib/modules/$KERNELVERSION/${file#*/lib/modules/"$KERNELVERSION"/}"
}

add_udev_rule() { # add_udev_rule NAME|PATH
    local rules=$1 line pair key value prog
    local -a pairs
    if [[ $rules != /* ]]; then
        rules=$(PATH=/usr/lib/udev/rules.d:/lib/udev/rules.d type -P "$rules") || return 1
    fi
    add_file "$rules" "/usr/lib/udev/rules.d/${rules##*/}" || return 1
    while IFS= read -r line; do
        [[ -z ${line//[[:space:]]/} || $line == \#* ]] && continue
        IFS=, read -ra pairs <<<"$line"
        for pair in "${pairs[@]}"; do
            IFS=' =' read -r key value <<<"$pair"
            case $key in
            'RUN{program}' | 'RUN+' | 'IMPORT{program}' | 'ENV{REMOVE_CMD}')
                prog=${value//[\"\']/}
                prog=${prog%% *}
                [[ $prog == \$* ]] && continue
                if [[ $prog != /* ]]; then
                    prog=$(PATH=/usr/lib/udev:/lib/udev type -P "$prog") || continue
                fi
                add_binary "$prog"
                ;;
            esac
        done
    done <"$rules"
}

add_full_dir() { # add_full_dir DIR [FILTER [STRIP]]
    local f filter=${2:-*} strip=${3:-}
    [[ -n $1 && -d $1 ]] || return 0
    add_dir "$1"
    for f in "$1"/*; do
        if [[ -L $f ]]; then
            # shellcheck disable=SC2053 # a glob
            [[ $f == $filter ]] && add_symlink "${f#"$strip"}" "$(readlink "$f")"
        elif [[ -d $f ]]; then
            add_full_dir "$f" "$filter" "$strip"
        elif [[ -f $f ]]; then
            # shellcheck disable=SC2053
            [[ $f == $filter ]] && add_file "$f" "${f#"$strip"}"
        fi
    done
    return 0
}

add_runscript() { # the runtime part of the hook being built: hooks/NAME -> /hooks/NAME
    local script=$HOOKS_DIR/hooks/$_hook
    [[ -f $script ]] || { error "runtime script for '%s' not found" "$_hook"; return 1; }
    _parents "/hooks/$_hook"
    install -m755 "$script" "$BUILDROOT/hooks/$_hook"
    _written "/hooks/$_hook"
}

if [[ ${SYSTEMD_IMAGE:-0} == 1 ]]; then
    add_systemd_unit() { # add_systemd_unit NAME
        local unit key values dep
        local -a vals
        unit=$(PATH=/usr/lib/systemd/system:/lib/systemd/system type -P "$1") || return 1
        add_file "$unit" || return 1
        for dep in /{etc,usr/lib}/systemd/system/"${unit##*/}".d/*.conf; do
            [[ -f $dep ]] && add_file "$dep"
        done
        while IFS='=' read -r key values; do
            read -ra vals <<<"$values"
            case $key in
            Requires | OnFailure) map add_systemd_unit "${vals[@]}" ;;
            Exec*)
                case ${vals[0]} in
                -*) ;;
                !!*) add_binary "${vals[0]#!!}" ;;
                *) add_binary "${vals[0]#[@!:+]}" ;;
                esac
                ;;
            esac
        done <"$unit"
        for dep in {/usr,}/lib/systemd/system/*.wants/"${unit##*/}"; do
            [[ -L $dep ]] && add_symlink "$dep"
        done
        if [[ -d $unit.requires ]]; then
            for dep in "$unit".requires/*; do
                add_systemd_unit "${dep##*/}"
            done
        fi
        return 0
    }
    add_systemd_drop_in() { add_file - "/etc/systemd/system/$1.d/$2.conf" 644; }
fi

# run_build_hook NAME: source install/NAME and call its build(); fails on any add_* error.
run_build_hook() {
    _hook=$1
    [[ -f $HOOKS_DIR/install/$_hook ]] || { error "no install hook %s" "$HOOKS_DIR/install/$_hook"; return 1; }
    unset -f build
    # shellcheck source=/dev/null
    . "$HOOKS_DIR/install/$_hook"
    declare -F build >/dev/null || { error "install/%s defines no build()" "$_hook"; return 1; }
    msg2 "Running build hook: [%s]" "$_hook"
    build || { error "build() of hook %s failed" "$_hook"; return 1; }
    ((build_errors == 0)) || { printf '==> hook %s: %d error(s)\n' "$_hook" "$build_errors" >&2; return 1; }
}
