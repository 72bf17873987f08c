//! Named crash points for crash tests. With `REWIND_FAILPOINT=NAME` in the environment the
//! process exits at once with status 137, as if killed, when it reaches the point `NAME`;
//! without it every point is a no-op (one environment lookup).
//!
//! Every flow that writes metadata or loads tables has points right after each: a test kills
//! it there and checks that the next run (or the next boot) takes it from there (invariant 8).
//! The VM scenarios use the `poll-*` points; crash tests of the host tier stop a metadata
//! commit inside its steps instead (`flow::env::Env::commit_hook`).

/// Every point, by name:
///
/// | point | where |
/// |---|---|
/// | `poll-waiting` | rewind poll: a merge seen still copying, before the wait |
/// | `poll-after-commit` | rewind poll: the metadata without the merged snapshot committed, tables not reloaded |
/// | `poll-after-reload` | rewind poll: the origin's tables reloaded, leftover devices not removed |
/// | `thin-after-commit` | rewind poll: a thin merge's finish committed (the pool owes its delete), no message sent |
/// | `thin-after-delete` | rewind poll: the pool sent `delete`, not `set_transaction_id` |
/// | `thin-after-messages` | rewind poll: both messages sent, the pool's tag not dropped |
/// | `early-after-commit` | rewind early: the merge flags committed, no table loaded |
/// | `early-after-tables` | rewind early: one volume's tables loaded, its nodes not made |
/// | `rollback-after-commit` | rewind rollback: the merge flag committed, no table loaded |
/// | `rollback-after-tables` | rewind rollback: the merge tables loaded |
/// | `snapshot-after-lvcreate` | rewind snapshot: one more member's store made by stock lvcreate (pending) |
/// | `snapshot-after-commit` | rewind snapshot: one more VG's stores turned into snapshots (pending), no device made |
/// | `snapshot-before-window` | rewind snapshot: every device prepared, the window not taken |
/// | `snapshot-in-window` | rewind snapshot: every origin suspended, nothing resumed (the guardian resumes them) |
/// | `snapshot-after-window` | rewind snapshot: the window taken, the set still pending in every VG |
/// | `snapshot-after-complete` | rewind snapshot: one more VG's members no longer pending |
/// | `rollback-set-after-commit` | rewind rollback SET: one more VG's members flagged |
/// | `cancel-after-commit` | rewind cancel: the flag withdrawn, tables not restored |
pub const POINTS: &[&str] = &[
    "poll-waiting",
    "poll-after-commit",
    "poll-after-reload",
    "thin-after-commit",
    "thin-after-delete",
    "thin-after-messages",
    "early-after-commit",
    "early-after-tables",
    "rollback-after-commit",
    "rollback-after-tables",
    "snapshot-after-lvcreate",
    "snapshot-after-commit",
    "snapshot-before-window",
    "snapshot-in-window",
    "snapshot-after-window",
    "snapshot-after-complete",
    "rollback-set-after-commit",
    "cancel-after-commit",
];

/// The environment variable that arms a point.
pub const VAR: &str = "REWIND_FAILPOINT";

/// Whether `REWIND_FAILPOINT` names `name`.
pub fn armed(name: &str) -> bool {
    debug_assert!(POINTS.contains(&name), "unknown failpoint {name}");
    std::env::var_os(VAR).is_some_and(|v| v == name)
}

/// Exits as if killed when `name` is armed.
pub fn hit(name: &str) {
    hit_with(name, String::new);
}

/// Exits as if killed when `name` is armed, logging `detail()` (what the point saw) first.
pub fn hit_with(name: &str, detail: impl FnOnce() -> String) {
    if armed(name) {
        let detail = detail();
        if detail.is_empty() {
            log::error!("failpoint {name}: exiting as if killed");
        } else {
            log::error!("failpoint {name}: exiting as if killed; {detail}");
        }
        std::process::exit(137);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_unique_and_unarmed_by_default() {
        let mut names: Vec<&str> = POINTS.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), POINTS.len());
        if std::env::var_os(VAR).is_none() {
            assert!(POINTS.iter().all(|n| !armed(n)));
        }
    }

    #[test]
    fn every_point_the_vm_scenarios_arm_exists() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vm");
        let mut stack = vec![std::path::PathBuf::from(dir)];
        let mut seen = 0;
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("tests/vm").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                if p.extension().is_none_or(|x| x != "sh") {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&p) else {
                    continue;
                };
                for (i, _) in text.match_indices("REWIND_FAILPOINT=") {
                    let rest = &text[i + VAR.len() + 1..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect();
                    if name.is_empty() {
                        continue; // a variable: its values are checked where they are set
                    }
                    seen += 1;
                    assert!(
                        POINTS.contains(&name.as_str()),
                        "{}: unknown failpoint {name}",
                        p.display()
                    );
                }
            }
        }
        assert!(seen > 0, "the VM scenarios arm failpoints");
    }
}
