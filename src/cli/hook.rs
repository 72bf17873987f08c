//! What `rewind hook` prints: one line on apt's terminal, `rewind: ` first.

use super::args::Phase;
use crate::exit::Verdict;
use crate::flow::env::System;
use crate::flow::pkghook::{self, Pre};

/// `rewind hook apt pre|post`: the verdict is a failure only when apt must stop.
pub fn apt(sys: &System, phase: Phase) -> Verdict {
    match phase {
        Phase::Pre => {
            let mut input = String::new();
            if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut input) {
                input.clear();
                log::warn!("reading apt's package list: {e}");
            }
            let (line, verdict) = pre_line(&pkghook::apt_pre(sys, &input));
            eprintln!("{line}");
            verdict
        }
        Phase::Post => {
            match pkghook::apt_post(sys) {
                Ok(Some((set, Ok(())))) => {
                    eprintln!("rewind: snapshot set {set}: apt finished as planned (recorded)");
                }
                Ok(Some((set, Err(off)))) => eprintln!(
                    "rewind: snapshot set {set}: apt did not finish as planned ({off}); rewind rollback {set} goes back to before it"
                ),
                Ok(None) => {}
                Err(e) => eprintln!("rewind: warning: {e}"),
            }
            Verdict::Ok
        }
    }
}

/// The line pre prints and its verdict.
pub fn pre_line(pre: &Pre) -> (String, Verdict) {
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
                "rewind: warning: no rollback point was taken: {error}; apt goes on ([hooks] on_failure = \"warn\")"
            ),
            Verdict::Ok,
        ),
        Pre::Failed { error, stop: true } => (
            format!(
                "rewind: no rollback point could be taken: {error}; stopping apt before dpkg runs, nothing was changed ([hooks] on_failure = \"stop\")"
            ),
            Verdict::Failed,
        ),
    }
}
