//! What `rewind hook` prints: one line on the package manager's terminal, `rewind: ` first.

use super::args::{Manager, Phase};
use crate::exit::Verdict;
use crate::flow::env::System;
use crate::flow::pkghook::{self, Pre};

/// `rewind hook MANAGER pre|post`: the verdict is a failure only when the package manager
/// must stop.
pub fn run(sys: &System, manager: Manager, phase: Phase) -> Verdict {
    let name = manager.name();
    match phase {
        Phase::Pre => {
            let mut input = String::new();
            if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut input) {
                input.clear();
                log::warn!("reading {name}'s package list: {e}");
            }
            let pre = match manager {
                Manager::Apt => pkghook::apt_pre(sys, &input),
                Manager::Dnf => pkghook::dnf_pre(sys, &input),
                Manager::Pacman => {
                    let command = crate::system::procs::parent_command();
                    pkghook::pacman_pre(sys, &input, command.as_deref())
                }
            };
            let (line, verdict) = pre_line(manager, &pre);
            eprintln!("{line}");
            verdict
        }
        Phase::Post => {
            let post = match manager {
                Manager::Apt => pkghook::apt_post(sys),
                Manager::Dnf => {
                    let mut input = String::new();
                    if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
                    {
                        log::warn!("reading dnf's package list: {e}");
                    }
                    pkghook::dnf_post(sys, &input)
                }
                Manager::Pacman => pkghook::pacman_post(sys),
            };
            match post {
                Ok(Some((set, Ok(())))) => {
                    eprintln!("rewind: snapshot set {set}: {name} finished as planned (recorded)");
                }
                Ok(Some((set, Err(off)))) => eprintln!(
                    "rewind: snapshot set {set}: {name} did not finish as planned ({off}); rewind rollback {set} goes back to before it"
                ),
                Ok(None) => {}
                Err(e) => eprintln!("rewind: warning: {e}"),
            }
            Verdict::Ok
        }
    }
}

/// The line pre prints and its verdict.
pub fn pre_line(manager: Manager, pre: &Pre) -> (String, Verdict) {
    let name = manager.name();
    match pre {
        Pre::Skipped(why) => (format!("rewind: no snapshot set taken: {why}"), Verdict::Ok),
        Pre::Taken {
            name,
            description,
            pruned,
        } => {
            let mut line = format!(
                "rewind: snapshot set {name} taken ({description}); `rewind rollback {name}` goes back to before this transaction"
            );
            if !pruned.is_empty() {
                line.push_str(&format!("; pruned {}", pruned.join(", ")));
            }
            (line, Verdict::Ok)
        }
        Pre::Failed { error, stop: false } => (
            format!(
                "rewind: warning: no rollback point was taken: {error}; {name} goes on ([hooks] on_failure = \"warn\")"
            ),
            Verdict::Ok,
        ),
        Pre::Failed { error, stop: true } => (
            format!(
                "rewind: no rollback point could be taken: {error}; {}, nothing was changed ([hooks] on_failure = \"stop\")",
                manager.stop_point()
            ),
            Verdict::Failed,
        ),
    }
}
