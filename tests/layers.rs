//! The layer rules of `src/lib.rs`, checked on the source: a module may import only from its
//! own layer and the layers below, and only `system/` touches the kernel, `/dev`, `/sys`,
//! `/proc` and files (a flow reads and writes through `system/`). A source scan, so a wrong import fails here even where the compiler would accept
//! it. Rules, by the first directory (or file) under `src/`:
//!
//! | layer     | may not import                                        | no kernel access |
//! |-----------|-------------------------------------------------------|------------------|
//! | `lvm/`    | `plan`, `system`, `config`, `exit`, `flow`, `cli`     | yes              |
//! | `plan/`   | `system`, `config`, `exit`, `flow`, `cli`             | yes              |
//! | `config`  | `plan`, `system`, `exit`, `flow`, `cli`               |                  |
//! | `exit`    | anything of this crate                                | yes              |
//! | `system/` | `config`, `exit`, `flow`, `cli`                       |                  |
//! | `flow/`   | `cli`                                                 | yes              |
//!
//! "No kernel access" (outside `#[cfg(test)]` code): no `std::fs`, `std::process`, `std::env`,
//! `std::os`, `File`, `nix`, `libc` or `devicemapper`. Paths that climb out of a layer with
//! `super::super` (or a `#[path]` attribute) count as imports of the crate root and are refused
//! in the pure layers.

use std::path::{Path, PathBuf};

/// The top-level modules of the crate.
const MODULES: &[&str] = &["lvm", "plan", "system", "config", "exit", "flow", "cli"];

/// What each layer may not import, and whether it may touch the kernel.
fn rule(layer: &str) -> Option<(&'static [&'static str], bool)> {
    Some(match layer {
        "lvm" => (&["plan", "system", "config", "exit", "flow", "cli"], false),
        "plan" => (&["system", "config", "exit", "flow", "cli"], false),
        "config" => (&["plan", "system", "exit", "flow", "cli"], true),
        "exit" => (MODULES, false),
        "system" => (&["config", "exit", "flow", "cli"], true),
        "flow" => (&["cli"], false),
        _ => return None,
    })
}

const KERNEL: &[&str] = &[
    "std::fs",
    "std::process",
    "std::env",
    "std::os",
    "File::",
    "nix::",
    "libc",
    "devicemapper::",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The layer of a file: its first path component under `src/`, without `.rs`.
fn layer_of(rel: &Path) -> String {
    let first = rel.components().next().expect("a path under src");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

/// Whether a whole file is test code (`tests.rs`, `testvg.rs`, `tests/...`, declared under
/// `#[cfg(test)]`).
fn test_file(rel: &Path) -> bool {
    rel.components().any(|c| {
        let c = c.as_os_str().to_string_lossy();
        c == "tests.rs" || c == "tests" || c == "testvg.rs"
    })
}

/// The crate modules a line names: `crate::X`, `super::super::...` climbing to the root.
fn named_modules(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in line.match_indices("crate::") {
        if i > 0 && line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` in macros, or a longer identifier
        }
        let rest = &line[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() && rest.starts_with('{') {
            out.push("{".into());
        } else {
            out.push(name);
        }
    }
    out
}

/// Every violation in the source tree under `src`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for path in files {
        let rel = path.strip_prefix(src).expect("under src").to_path_buf();
        let layer = layer_of(&rel);
        let Some((forbidden, may_touch_kernel)) = rule(&layer) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).expect("read source");
        let mut in_tests = test_file(&rel);
        for (n, line) in text.lines().enumerate() {
            let at = format!("src/{}:{}", rel.display(), n + 1);
            let code = line.split("//").next().unwrap_or_default();
            if line.trim_start().starts_with("#[cfg(test)]") {
                // Tests sit at the end of a file (`mod tests`): the rest is test code.
                in_tests = true;
            }
            for m in named_modules(code) {
                if m == "{" {
                    found.push(format!(
                        "{at}: `crate::{{...}}` groups imports across layers; name each path"
                    ));
                } else if forbidden.contains(&m.as_str()) {
                    found.push(format!(
                        "{at}: {layer} imports crate::{m}, which is not below it: {}",
                        code.trim()
                    ));
                }
            }
            let pure = !may_touch_kernel;
            if pure && (code.contains("super::super") || code.contains("#[path")) {
                found.push(format!(
                    "{at}: {layer} climbs out of its layer: {}",
                    code.trim()
                ));
            }
            if pure && !in_tests {
                for k in KERNEL {
                    if code.contains(k) {
                        found.push(format!(
                            "{at}: {layer} touches the system ({k}); only system/ may: {}",
                            code.trim()
                        ));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn pure_layers_import_nothing_above_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "layer rules broken (see src/lib.rs):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_a_wrong_import() {
    // The scanner itself: a pure module that imports upward is caught, one that does not is not.
    let dir = tempfile::tempdir().expect("tempdir");
    let lvm = dir.path().join("lvm");
    std::fs::create_dir_all(&lvm).expect("mkdir");
    std::fs::write(
        lvm.join("ok.rs"),
        "use crate::lvm::text;\nuse std::fmt;\n#[cfg(test)]\nmod tests { use std::fs; }\n",
    )
    .expect("write");
    assert!(
        violations(dir.path()).is_empty(),
        "{:?}",
        violations(dir.path())
    );
    std::fs::write(
        lvm.join("bad.rs"),
        "use crate::system::dm::DevNum;\nuse super::super::cli;\nfn f() { std::fs::read(\"/proc/x\"); }\n",
    )
    .expect("write");
    let v = violations(dir.path());
    assert_eq!(v.len(), 3, "{v:#?}");
    assert!(v[0].contains("lvm imports crate::system"), "{}", v[0]);
}
