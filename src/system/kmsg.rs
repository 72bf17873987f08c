//! A tiny `log` backend for the initramfs: each record goes to `/dev/kmsg` as one line with the
//! `rewind:` prefix and the syslog level, so it lands on the console and in the journal.
//! Falls back to stderr when `/dev/kmsg` cannot be opened (a test, or an odd initramfs).

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

#[derive(Debug)]
pub struct KmsgLogger {
    sink: Mutex<Option<File>>,
    level: LevelFilter,
}

/// The syslog priority the kernel reads from the `<N>` prefix.
fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 5, // notice: shown on the console at the default loglevel of most distros
        Level::Debug | Level::Trace => 7,
    }
}

/// Formats one kmsg line; the kernel splits on newlines, so each record is one line.
pub fn format_line(level: Level, message: &str) -> String {
    format!(
        "<{}>rewind: {}\n",
        priority(level),
        message.replace('\n', " / ")
    )
}

impl KmsgLogger {
    /// Installs the logger. `path` is normally `/dev/kmsg` (injectable for tests).
    pub fn install(path: &std::path::Path, level: LevelFilter) -> Result<(), log::SetLoggerError> {
        let sink = OpenOptions::new().write(true).open(path).ok();
        log::set_boxed_logger(Box::new(KmsgLogger {
            sink: Mutex::new(sink),
            level,
        }))?;
        log::set_max_level(level);
        Ok(())
    }
}

impl Log for KmsgLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(record.level(), &record.args().to_string());
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let written = sink
            .as_mut()
            .is_some_and(|f| f.write_all(line.as_bytes()).is_ok());
        if !written {
            // The `<N>` prefix means nothing on a terminal.
            let plain = line.split_once('>').map_or(line.as_str(), |(_, rest)| rest);
            let _ = std::io::stderr().write_all(plain.as_bytes());
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_priority_prefix_and_no_inner_newline() {
        assert_eq!(
            format_line(Level::Error, "vg0: missing PV\nsee inspect"),
            "<3>rewind: vg0: missing PV / see inspect\n"
        );
        assert_eq!(format_line(Level::Info, "x"), "<5>rewind: x\n");
        assert_eq!(format_line(Level::Trace, "x"), "<7>rewind: x\n");
    }
}
