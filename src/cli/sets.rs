//! What the snapshot-set commands print.

use crate::flow::snapshot::Taken;

/// The lines `rewind snapshot` prints: the set, then one line per member.
pub fn taken(t: &Taken) -> String {
    let mut out = match &t.window {
        Some(w) => format!(
            "snapshot set {}: {} member(s), taken at one instant (writes held for {:.1} ms)",
            t.name,
            t.members.len(),
            w.window.as_secs_f64() * 1000.0
        ),
        None => format!(
            "snapshot set {}: {} member(s), none active (metadata only)",
            t.name,
            t.members.len()
        ),
    };
    for m in &t.members {
        out.push_str(&format!(
            "\n  {}/{} <- {}/{} ({} extents){}",
            m.vg,
            m.origin,
            m.vg,
            m.cow,
            m.extents,
            m.mount
                .as_deref()
                .map(|p| format!(", {p}"))
                .unwrap_or_default()
        ));
    }
    out
}
