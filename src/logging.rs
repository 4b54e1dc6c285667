//! Log setup: one function. Level from `--log-level`, else `RUST_LOG` (a level name), else
//! `info`.
//!
//! On a terminal, simple_logger's readable lines with UTC timestamps. Under systemd (stderr
//! connected to the journal, `$JOURNAL_STREAM` set) each line starts with the syslog
//! priority, `<3>` for errors through `<7>` for debug, so `journalctl -p warning` works, and
//! the journal adds its own timestamps.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

/// Writes `<priority>target: message` lines to stderr for the journal.
struct JournalLogger {
    level: LevelFilter,
}

/// The syslog priority of a log level.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

impl Log for JournalLogger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        // One write per line, so lines from different threads never interleave.
        let line = format!("<{}>{}: {}\n", priority(r.level()), r.target(), r.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the global logger. `level` overrides the environment.
pub fn init(level: Option<LevelFilter>) {
    let level = level
        .or_else(|| std::env::var("RUST_LOG").ok().and_then(|v| v.trim().parse().ok()))
        .unwrap_or(LevelFilter::Info);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if log::set_boxed_logger(Box::new(JournalLogger { level })).is_ok() {
            log::set_max_level(level);
        }
    } else {
        let _ = simple_logger::SimpleLogger::new().with_level(level).with_utc_timestamps().init();
    }
    std::panic::set_hook(Box::new(|info| {
        log::error!("panic: {info}");
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_priorities_match_syslog() {
        assert_eq!(priority(Level::Error), 3);
        assert_eq!(priority(Level::Warn), 4);
        assert_eq!(priority(Level::Info), 6);
        assert_eq!(priority(Level::Debug), 7);
    }
}
