//! Writes rewind's man pages and shell completions from the clap definitions
//! ([`rewind::cli::Cli`]), the same ones `--help` prints, so the two never drift.
//!
//! ```text
//! cargo run --features gen-docs --bin rewind-gen-docs -- DIR
//! ```
//!
//! DIR/man/: `rewind.8` and `rewind-SUBCOMMAND.8` for each subcommand; DIR/completions/:
//! `rewind.bash`, `_rewind` (zsh) and `rewind.fish`, each with completion of snapshot names
//! (from stock `lvs`) where an argument is a `VG/SNAPSHOT`. Built only with the `gen-docs`
//! feature, so the shipped `rewind` binary carries neither generator. `SOURCE_DATE_EPOCH`, when
//! set, dates the pages (reproducible builds); otherwise today's date does. The hand-written
//! pages (`rewind.toml(5)`, `rewind-boot(7)`) are in `docs/man/`.

use clap::{Command, CommandFactory};
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: rewind-gen-docs DIR");
        return ExitCode::from(rewind::exit::USAGE);
    };
    match write_all(Path::new(&dir)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rewind-gen-docs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every page and completion file under `dir`; returns the files written.
fn write_all(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man_dir = dir.join("man");
    std::fs::create_dir_all(&man_dir)?;
    let mut cmd = rewind::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    // `.TH`'s date must not be empty: an empty argument shifts the ones after it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().try_into().unwrap_or(i64::MAX));
    let date = iso_date(
        std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(now),
    );
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        written.push(write_page(&man_dir, sub, &date, false)?);
    }
    written.push(write_page(&man_dir, &cmd, &date, true)?);

    let comp_dir = dir.join("completions");
    std::fs::create_dir_all(&comp_dir)?;
    let names = SnapshotArgs::of(&cmd);
    for (shell, file) in [
        (Shell::Bash, "rewind.bash"),
        (Shell::Zsh, "_rewind"),
        (Shell::Fish, "rewind.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "rewind", &mut out);
        let text = String::from_utf8(out).map_err(std::io::Error::other)?;
        let text = match shell {
            Shell::Bash => names.bash(text),
            Shell::Zsh => names.zsh(&text)?,
            _ => names.fish(text),
        };
        let path = comp_dir.join(file);
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

/// One page, section 8: clap_mangen's page, with the after-help text (the exit status) under
/// EXIT STATUS rather than EXTRA, and before VERSION: the exit codes (the main page), FILES
/// (the main page) and SEE ALSO.
fn write_page(dir: &Path, cmd: &Command, date: &str, main_page: bool) -> std::io::Result<PathBuf> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned();
    let man = Man::new(cmd.clone())
        .section("8")
        .date(date)
        .source(format!("rewind {}", env!("CARGO_PKG_VERSION")))
        .manual("System Administration");
    let mut out = Vec::new();
    man.render(&mut out)?;
    let page = String::from_utf8(out).map_err(std::io::Error::other)?;
    let page = page
        .replace(".SH EXTRA\nExit status: ", ".SH \"EXIT STATUS\"\n")
        .replace(".SH EXTRA\n", ".SH \"EXIT STATUS\"\n");
    let page = code_in_bold(&page);

    let mut roff = Roff::new();
    if main_page {
        roff.control("SH", ["EXIT STATUS"]);
        for (code, what) in [
            (rewind::exit::SUCCESS, "success, or nothing to do"),
            (
                rewind::exit::FAILURE,
                "failed or refused; the message says why",
            ),
            (rewind::exit::USAGE, "usage error"),
            (
                rewind::exit::UNHEALTHY,
                "(rewind status) a snapshot is invalid or a merge failed",
            ),
        ] {
            roff.control("TP", []);
            roff.text([bold(code.to_string())]);
            roff.text([roman(what)]);
        }
        roff.control("PP", []);
        roff.text([roman(
            "The page of each subcommand says what they mean for it.",
        )]);
        roff.control("SH", ["FILES"]);
        roff.control("TP", []);
        roff.text([bold(rewind::config::DEFAULT_PATH)]);
        roff.text([
            roman("The configuration; the initramfs holds a copy, read at boot. See "),
            bold("rewind.toml"),
            roman("(5)."),
        ]);
    }
    roff.control("SH", ["SEE ALSO"]);
    let mut see = Vec::new();
    if !main_page {
        see.push(("rewind", "8"));
    }
    see.extend([
        ("rewind.toml", "5"),
        ("rewind-boot", "7"),
        ("lvm", "8"),
        ("lvconvert", "8"),
    ]);
    let mut line = Vec::new();
    for (i, (page, section)) in see.iter().enumerate() {
        let sep = if i + 1 < see.len() { ", " } else { "" };
        line.push(bold(*page));
        line.push(roman(format!("({section}){sep}")));
    }
    roff.text(line);
    // Text without apostrophes: to_roff leaves them as they are.
    let ours = roff.to_roff();
    let page = match page.find("\n.SH VERSION\n") {
        Some(at) => format!("{}\n{}{}", &page[..at], ours, &page[at + 1..]),
        None => format!("{page}{ours}"),
    };
    let path = dir.join(format!("{name}.8"));
    std::fs::write(&path, page)?;
    Ok(path)
}

/// The help texts mark commands and options with backquotes (`rewind early`); a man page sets
/// them in bold. Only text lines with whole pairs are changed.
fn code_in_bold(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    for line in page.split_inclusive('\n') {
        let ticks = line.matches('`').count();
        if line.starts_with('.') || ticks == 0 || ticks % 2 == 1 {
            out.push_str(line);
            continue;
        }
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 1 {
                out.push_str("\\fB");
                out.push_str(part);
                out.push_str("\\fR");
            } else {
                out.push_str(part);
            }
        }
    }
    out
}

/// `YYYY-MM-DD` (UTC) of a Unix time (Howard Hinnant's civil-from-days).
fn iso_date(secs: i64) -> String {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The snapshots stock LVM knows, one `VG/LV` a line (indented), for the completions; as root
/// only, and nothing where it cannot run.
const LVS_SNAPSHOTS: &str = "LVM_SUPPRESS_FD_WARNINGS=1 lvs --noheadings --separator / -o vg_name,lv_name -S 'lv_attr=~^[sS]' 2>/dev/null";

/// The subcommands with an argument named [`rewind::cli::SNAPSHOT_VALUE`], which the
/// completions fill with snapshot names: clap's own completions offer nothing there.
#[derive(Debug)]
struct SnapshotArgs {
    /// (subcommand, the argument's id, the subcommand's options that take a value)
    subcommands: Vec<(String, String, Vec<String>)>,
}

impl SnapshotArgs {
    fn of(cmd: &Command) -> SnapshotArgs {
        let mut subcommands = Vec::new();
        for sub in cmd.get_subcommands() {
            let Some(arg) = sub.get_positionals().find(|a| {
                a.get_value_names()
                    .is_some_and(|v| v.iter().any(|n| n == rewind::cli::SNAPSHOT_VALUE))
            }) else {
                continue;
            };
            let mut valued = Vec::new();
            for opt in sub.get_opts() {
                if opt.get_action().takes_values() {
                    valued.extend(opt.get_long().map(|l| format!("--{l}")));
                    valued.extend(opt.get_short().map(|c| format!("-{c}")));
                }
            }
            subcommands.push((sub.get_name().to_owned(), arg.get_id().to_string(), valued));
        }
        SnapshotArgs { subcommands }
    }

    fn names(&self) -> String {
        let n: Vec<&str> = self.subcommands.iter().map(|s| s.0.as_str()).collect();
        n.join(" ")
    }

    /// bash: clap's `_rewind` completes options and subcommands; a wrapper replaces its
    /// answer with snapshot names where the word is such an argument.
    fn bash(&self, mut text: String) -> String {
        let subs = self.names().replace(' ', " | ");
        let mut valued: Vec<&str> = (self.subcommands.iter())
            .flat_map(|s| s.2.iter().map(String::as_str))
            .collect();
        valued.sort_unstable();
        valued.dedup();
        text.push_str(&format!(
            r#"
# rewind: snapshot names where an argument is a VG/SNAPSHOT ({subs}), from stock lvs.
_rewind_snapshots() {{
    _rewind "$@"
    local i sub="" cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${{COMP_WORDS[i]}} in
            {subs}) sub=${{COMP_WORDS[i]}}; break ;;
        esac
    done
    [[ -n $sub && $cur != -* ]] || return 0
    case $prev in
        {valued}) return 0 ;;
    esac
    COMPREPLY=($(compgen -W "$({LVS_SNAPSHOTS} | tr -d ' ')" -- "$cur"))
}}
if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -F _rewind_snapshots -o nosort -o bashdefault -o default rewind
else
    complete -F _rewind_snapshots -o bashdefault -o default rewind
fi
"#,
            valued = valued.join(" | "),
        ));
        text
    }

    /// zsh: clap completes each such argument with `_default`; it becomes `_rewind_snapshots`,
    /// defined before the file's last lines call `_rewind` (an autoloaded completion file runs
    /// top to bottom).
    fn zsh(&self, text: &str) -> std::io::Result<String> {
        let mut out = String::new();
        let mut replaced = 0;
        for line in text.split_inclusive('\n') {
            if self
                .subcommands
                .iter()
                .any(|s| line.starts_with(&format!("':{} -- ", s.1)))
                && line.contains(":_default' \\")
            {
                out.push_str(&line.replacen(":_default' \\", ":_rewind_snapshots' \\", 1));
                replaced += 1;
            } else {
                out.push_str(line);
            }
        }
        let call = "if [ \"$funcstack[1]\" = \"_rewind\" ]; then";
        let at = out.find(call);
        // A change in clap's zsh output must fail the build, not drop the names silently.
        if replaced < self.subcommands.len() || at.is_none() {
            return Err(std::io::Error::other(format!(
                "clap's zsh completions changed shape: {replaced} VG/SNAPSHOT arguments found, want {} (and the closing `{call}`)",
                self.subcommands.len()
            )));
        }
        let func = format!(
            "# rewind: snapshot names for VG/SNAPSHOT arguments ({}), from stock lvs.\n\
             (( $+functions[_rewind_snapshots] )) ||\n\
             _rewind_snapshots() {{\n    \
                 local -a names\n    \
                 names=(${{(f)\"$({LVS_SNAPSHOTS} | tr -d ' ')\"}})\n    \
                 compadd -a names\n\
             }}\n\n",
            self.names()
        );
        out.insert_str(at.unwrap_or_default(), &func);
        Ok(out)
    }

    /// fish: the snapshot names as candidates of the subcommands' argument.
    fn fish(&self, mut text: String) -> String {
        text.push_str(&format!(
            "\n# rewind: snapshot names for VG/SNAPSHOT arguments, from stock lvs.\n\
             complete -c rewind -n \"__fish_seen_subcommand_from {}\" -f -a \"(sh -c \\\"{}\\\" | string trim)\"\n",
            self.names(),
            LVS_SNAPSHOTS,
        ));
        text
    }
}
