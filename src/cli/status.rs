//! `rewind status` printed: a text report, progress bars or lines while merges run (`--watch`),
//! or JSON (`flow::status::Report` is the document).
//!
//! Exit codes: 0 all well, 1 the state could not be read, 3 a snapshot is invalid or a merge
//! failed (see the messages).

use super::Error;
use crate::flow::status::{OriginReport, Report, Sampler, SnapshotReport, State, add_rates};
use std::time::{Duration, Instant};

/// Exit code: a snapshot is invalid or a merge failed.
pub const EXIT_UNHEALTHY: u8 = crate::exit::UNHEALTHY;

/// `rewind status --watch` without a terminal (progress bars need one): after each sample, one
/// line per running merge (`VG/ORIGIN <- SNAP: P% merged, N left[, rate][, time left]`), and one
/// line when a merge stops running (done, failed, invalid or gone). Returns when no merge is
/// running any more, or with the error when a sample cannot be taken. `take` samples the
/// state again; `sleep` waits between samples (one second in the command); `clock` is the clock
/// the rate is measured with (a sample can take longer than the wait).
pub fn watch(
    report: &mut Report,
    take: &mut dyn FnMut() -> Result<Report, String>,
    sleep: &mut dyn FnMut(Duration),
    clock: &mut dyn FnMut() -> std::time::Instant,
    out: &mut dyn std::io::Write,
) -> Result<(), String> {
    let key = |o: &OriginReport, s: &SnapshotReport| format!("{}/{} <- {}", o.vg, o.origin, s.name);
    let mut running: Vec<String> = Vec::new();
    let io = |e: std::io::Error| e.to_string();
    loop {
        let now: Vec<String> = report.merging().map(|(o, s)| key(o, s)).collect();
        for k in running.iter().filter(|k| !now.contains(k)) {
            let state = report
                .origins
                .iter()
                .flat_map(|o| o.snapshots.iter().map(move |s| (o, s)))
                .find(|(o, s)| key(o, s) == *k)
                .map(|(_, s)| match s.state {
                    State::Done => "merged; rewind poll drops it from the metadata",
                    State::MergeFailed => "MERGE FAILED",
                    State::Invalid => "INVALID",
                    State::Flagged | State::Merging | State::Snapshot => "not merging",
                })
                .unwrap_or("finished (the snapshot is gone from the metadata)");
            writeln!(out, "{k}: {state}").map_err(io)?;
        }
        for (o, s) in report.merging() {
            let mut line = format!("{}: merging", key(o, s));
            if let Some(m) = &s.merge {
                line.push_str(&format!(
                    ", {:.2}% merged, {} left",
                    m.percent,
                    human(m.bytes_left)
                ));
                if let Some(rate) = m.rate_bytes_per_s {
                    line.push_str(&format!(", {}/s", human(rate as u64)));
                }
                if let Some(eta) = m.eta_s {
                    line.push_str(&format!(", about {eta:.0} s to go"));
                }
            }
            writeln!(out, "{line}").map_err(io)?;
        }
        out.flush().map_err(io)?;
        if now.is_empty() {
            return Ok(());
        }
        running = now;
        let t0 = clock();
        sleep(Duration::from_secs(1));
        let mut again = take()?;
        add_rates(&mut again, report, clock().saturating_duration_since(t0));
        *report = again;
    }
}

/// `rewind status [--json] [--watch]`: prints the report; `--watch` follows running merges
/// (progress bars on a terminal, else a line per sample) before the final report.
pub fn show(
    report: &mut Report,
    sampler: &mut Sampler,
    json: bool,
    follow: bool,
) -> Result<(), Error> {
    if let Some(e) = &sampler.no_device_mapper {
        // Said, not hidden: without device-mapper the report is the metadata's alone.
        eprintln!(
            "rewind: device-mapper is not available ({e}): showing what the metadata says; no volume is active here"
        );
    }
    if follow && report.merging().next().is_some() {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            progress_bars(report, sampler);
        } else {
            // No terminal for progress bars: a line per sample on stdout.
            let mut out = std::io::stdout().lock();
            watch(
                report,
                &mut || sampler.sample().map_err(|e| e.to_string()),
                &mut std::thread::sleep,
                &mut Instant::now,
                &mut out,
            )
            .map_err(Error::Message)?;
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", print_text(report));
    }
    Ok(())
}

/// Progress bars for the running merges until none runs (or a sample fails: said, and the
/// last report stands).
fn progress_bars(report: &mut Report, sampler: &mut Sampler) {
    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix} [{bar:40}] {percent:>3}% {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let key = |o: &OriginReport, s: &SnapshotReport| format!("{}/{} <- {}", o.vg, o.origin, s.name);
    let mut bars: Vec<(String, ProgressBar)> = Vec::new();
    loop {
        for (o, s) in report.merging() {
            let k = key(o, s);
            if !bars.iter().any(|(b, _)| *b == k) {
                let bar = multi.add(ProgressBar::new(10000));
                bar.set_style(style.clone());
                bar.set_prefix(k.clone());
                bars.push((k, bar));
            }
        }
        for (k, bar) in &bars {
            let m = report
                .merging()
                .find(|(o, s)| key(o, s) == *k)
                .and_then(|(_, s)| s.merge.clone());
            match m {
                Some(m) => {
                    bar.set_position((m.percent * 100.0) as u64);
                    let eta = m
                        .eta_s
                        .map(|e| format!(", {e:.0} s left"))
                        .unwrap_or_default();
                    bar.set_message(format!("{} MiB left{eta}", m.bytes_left >> 20));
                }
                None => bar.finish_with_message("done"),
            }
        }
        if report.merging().next().is_none() {
            return;
        }
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        match sampler.sample() {
            Ok(mut r) => {
                add_rates(&mut r, report, t.elapsed());
                *report = r;
            }
            Err(e) => {
                eprintln!("rewind: {e}");
                return;
            }
        }
    }
}

fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// The text form.
/// One thin pool: its fill when active, and what makes it unhealthy.
pub(crate) fn pool_line(p: &crate::flow::status::PoolReport) -> String {
    let fill = |f: &Option<crate::flow::status::Fill>| match f {
        Some(f) => format!(
            "{:.2}% full ({} of {})",
            f.percent,
            human(f.allocated_bytes),
            human(f.total_bytes)
        ),
        None => "unknown".to_owned(),
    };
    let what = match (&p.device, &p.kernel) {
        (None, _) => "inactive".to_owned(),
        (Some(d), None) => format!("active as {d}, status unreadable"),
        (Some(d), Some(k)) if k.failed => {
            format!("active as {d}: FAILED (the kernel stopped it); repair it with lvm2")
        }
        (Some(d), Some(k)) => {
            let mut t = format!(
                "active as {d}: data {}, metadata {}",
                fill(&k.data),
                fill(&k.metadata)
            );
            if k.out_of_data_space {
                t.push_str(", OUT OF DATA SPACE (its thin volumes cannot be written)");
            }
            if k.read_only {
                t.push_str(", READ-ONLY metadata");
            }
            if k.needs_check {
                t.push_str(", NEEDS CHECK (thin_check / lvconvert --repair)");
            }
            t
        }
    };
    format!("thin pool {}/{} ({what})\n", p.vg, p.pool)
}

pub fn print_text(r: &Report) -> String {
    let mut out = String::new();
    for p in &r.problems {
        out.push_str(&format!("warning: {p}\n"));
    }
    for b in &r.rolled_back {
        out.push_str(&format!(
            "{}/{}: rolled back to snapshot set {} (merge finished {} UTC)\n",
            b.vg,
            b.origin,
            b.set,
            crate::cli::sets::when(Some(b.time))
        ));
    }
    if r.origins.is_empty() {
        out.push_str("no snapshots\n");
    }
    for p in &r.pools {
        out.push_str(&pool_line(p));
    }
    for o in &r.origins {
        let active = o
            .device
            .as_deref()
            .map_or("inactive".to_owned(), |d| format!("active as {d}"));
        out.push_str(&format!("{}/{} ({active})\n", o.vg, o.origin));
        for s in &o.snapshots {
            let what = match s.state {
                State::Snapshot => match &s.fill {
                    Some(f) => format!(
                        "snapshot, {:.2}% full ({} of {})",
                        f.percent,
                        human(f.allocated_bytes),
                        human(f.total_bytes)
                    ),
                    None => "snapshot (inactive)".to_owned(),
                },
                State::Flagged => {
                    "flagged: merges back at the next activation of its origin (the next boot for root)"
                        .to_owned()
                }
                State::Merging => match &s.merge {
                    Some(m) => {
                        let mut t = format!("merging, {:.2}% done, {} left", m.percent, human(m.bytes_left));
                        if let Some(rate) = m.rate_bytes_per_s {
                            t.push_str(&format!(", {}/s", human(rate as u64)));
                        }
                        if let Some(eta) = m.eta_s {
                            t.push_str(&format!(", about {eta:.0} s to go"));
                        }
                        t
                    }
                    None => "merging".to_owned(),
                },
                State::Done => "merged; rewind poll drops it from the metadata".to_owned(),
                State::Invalid => "INVALID: cannot be merged; lvremove it".to_owned(),
                State::MergeFailed => {
                    "MERGE FAILED: left as it is; check the kernel log and dmsetup status".to_owned()
                }
            };
            let mode = match &s.result_name {
                Some(n) => format!(" (snapshot mode: the result is named {n})"),
                None => String::new(),
            };
            out.push_str(&format!("  {}: {what}{mode}\n", s.name));
        }
    }
    out
}

#[cfg(test)]
mod tests;
