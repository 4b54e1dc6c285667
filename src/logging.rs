//! Log setup: one function, level from `--log-level`, else `RUST_LOG`, else `info`.
//! Under systemd (stderr connected to the journal) timestamps are left to the journal.

use log::LevelFilter;

/// Installs the global logger. `level` overrides the environment.
pub fn init(level: Option<LevelFilter>) {
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let mut logger = simple_logger::SimpleLogger::new().with_level(LevelFilter::Info).env();
    if let Some(l) = level {
        logger = logger.with_level(l);
    }
    if journal {
        logger = logger.without_timestamps();
    } else {
        logger = logger.with_utc_timestamps();
    }
    let _ = logger.init();
    std::panic::set_hook(Box::new(|info| {
        log::error!("panic: {info}");
    }));
}
