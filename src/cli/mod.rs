//! The command line: `edgenvr [run|check|status|export|archive|probe|discover] [options]`. The CLI is also the maintenance
//! interface over SSH, so its output is for people and its exit codes for scripts:
//! 0 success, 1 problems found, 2 usage or configuration error, 3 runtime failure.

#![allow(clippy::print_stdout)] // the CLI talks to people on stdout

mod archive;
mod check;
mod discover;
mod event;
mod export;
mod status;

use crate::config::Config;
use crate::err;
use crate::error::{Error, ErrorKind};
use log::LevelFilter;
use std::path::PathBuf;

const USAGE: &str = "\
usage: edgenvr [COMMAND] [OPTIONS]

commands:
  run            record every enabled camera (the default)
  check          verify that the index and the chunk files agree and every chunk parses
      --repair   cut torn tails, index unknown chunk files (imports PyNVR directories),
                 rewrite damaged rows, drop rows whose files are gone; safe while the
                 service records (the chunks it is writing are left alone)
  status         what the running service is doing (cameras, storage, reaper)
      --json     the raw status document
  export         write a time range of a camera as MP4 or raw H.264/H.265
      --camera ID --from TIME --to TIME -o FILE|-  [--format mp4|h264|h265]
                 TIME is RFC 3339 (2026-11-21T14:56:00Z) or Unix seconds
  archive status         each [[archive]] target: backlog, bytes sent, last error
  archive restore        rebuild the index from a bucket's manifests
      --box ID --target N  another box's footage (default: [server] box_id), target N
  probe          list V4L2 cameras (formats, sizes, rates) and hardware encoders
      --json     as JSON
  discover       find ONVIF cameras on the LAN and print them ready to add
      --timeout D            how long to wait for answers (default 3s, at most 30s)
      --username U           the cameras' ONVIF user, to ask for their streams
      --password-file F      a file whose first line is the password (- for stdin)
      --json                 as JSON (the document GET /api/v1/discover serves)
  event start CAMERA [--label L] [--at TIME] [--end TIME] [--note TEXT]
                 start an event now (or at TIME; with --end, record a finished one)
  event end EVENT [--at TIME]
                 end an open event
  event list [--camera ID] [--label L] [--from TIME] [--to TIME] [--limit N] [--json]
                 events, oldest first; the commands talk to the running service
                 (its API, with the configured token); list reads the index when it is down
  help           this text

options:
  --config FILE      configuration file (default: the embedded demo config)
  --log-level LEVEL  error, warn, info, debug or trace (default: $RUST_LOG or info)
  -V, --version      print the version
";

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    /// The subcommand.
    pub command: Command,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--log-level`.
    pub log_level: Option<LevelFilter>,
}

/// The subcommands.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Record.
    Run,
    /// Verify (and with `repair`, fix) index and files.
    Check {
        /// `--repair`.
        repair: bool,
    },
    /// Write an export.
    Export(export::ExportArgs),
    /// Show the running service's status.
    Status {
        /// `--json`.
        json: bool,
    },
    /// List V4L2 devices.
    Probe {
        /// `--json`.
        json: bool,
    },
    /// Hidden: decode one keyframe (stdin) to a JPEG (stdout); the service's thumbnail
    /// child ([`crate::thumb`]).
    ThumbnailDecode {
        /// `--width`.
        width: usize,
    },
    /// Find ONVIF cameras.
    Discover(discover::DiscoverArgs),
    /// Start, end or list events.
    Event(event::EventArgs),
    /// The off-box archive.
    Archive(archive::ArchiveArgs),
    /// Print usage.
    Help,
    /// Print the version.
    Version,
}

fn usage_error(msg: impl std::fmt::Display) -> Error {
    err!(InvalidArgument, "{msg}\n\n{USAGE}")
}

/// The subcommand named `s`, with its options at their defaults.
fn command_named(s: &str) -> Result<Command, Error> {
    Ok(match s {
        "run" => Command::Run,
        "check" => Command::Check { repair: false },
        "export" => Command::Export(export::ExportArgs::default()),
        "status" => Command::Status { json: false },
        "probe" => Command::Probe { json: false },
        "discover" => Command::Discover(discover::DiscoverArgs::default()),
        "event" => Command::Event(event::EventArgs::default()),
        "archive" => Command::Archive(archive::ArchiveArgs::default()),
        _ => return Err(usage_error(format!("unknown command {s:?}"))),
    })
}

/// An `export` option's value, into its slot.
fn export_arg(command: &mut Command, arg: &str, v: String) -> Result<(), Error> {
    let Command::Export(e) = command else {
        return Err(usage_error(format!("{arg} goes with `export`")));
    };
    let slot = match arg {
        "--camera" => &mut e.camera,
        "--from" => &mut e.from,
        "--to" => &mut e.to,
        "--format" => &mut e.format,
        _ => &mut e.output,
    };
    *slot = Some(v);
    Ok(())
}

/// Parses arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Args, Error> {
    let mut it = args.iter().peekable();
    let command = match it.peek().map(|s| s.as_str()) {
        Some(crate::thumb::CHILD_COMMAND) => {
            let width = match (args.get(1).map(String::as_str), args.get(2).and_then(|w| w.parse().ok())) {
                (Some("--width"), Some(w)) if args.len() == 3 => w,
                _ => return Err(usage_error("thumbnail-decode takes --width N")),
            };
            return Ok(Args { command: Command::ThumbnailDecode { width }, config: None, log_level: None });
        }
        Some("help" | "-h" | "--help") => return Ok(Args { command: Command::Help, config: None, log_level: None }),
        Some("-V" | "--version") => return Ok(Args { command: Command::Version, config: None, log_level: None }),
        Some(s) if !s.starts_with('-') => {
            let c = command_named(s)?;
            it.next();
            c
        }
        _ => Command::Run,
    };
    let mut a = Args { command, config: None, log_level: None };
    while let Some(arg) = it.next() {
        if let Command::Event(e) = &mut a.command {
            if !arg.starts_with('-') {
                if !e.positional(arg) {
                    return Err(usage_error(format!("unexpected argument {arg:?}")));
                }
                continue;
            }
            if event::EventArgs::OPTIONS.contains(&arg.as_str()) {
                let v = it.next().cloned().ok_or_else(|| usage_error(format!("{arg} needs a value")))?;
                e.set(arg, v);
                continue;
            }
        }
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| usage_error(format!("{name} needs a value")));
        match arg.as_str() {
            "--config" | "-c" => a.config = Some(PathBuf::from(value("--config")?)),
            "--log-level" => {
                let v = value("--log-level")?;
                a.log_level = Some(v.parse().map_err(|_| usage_error(format!("--log-level {v:?} is not a level")))?);
            }
            "--repair" => match &mut a.command {
                Command::Check { repair } => *repair = true,
                _ => return Err(usage_error("--repair goes with `check`")),
            },
            "--json" => match &mut a.command {
                Command::Status { json } | Command::Probe { json } => *json = true,
                Command::Discover(d) => d.json = true,
                Command::Event(e) => e.json = true,
                _ => return Err(usage_error("--json goes with `status`, `probe`, `discover` or `event`")),
            },
            "--timeout" | "--username" | "--password-file" => {
                let v = value(arg)?;
                let Command::Discover(d) = &mut a.command else {
                    return Err(usage_error(format!("{arg} goes with `discover`")));
                };
                d.set(arg, v);
            }
            "--camera" | "--from" | "--to" | "-o" | "--output" | "--format" => {
                export_arg(&mut a.command, arg, value(arg)?)?
            }
            "status" | "restore" | "--box" | "--target" if matches!(a.command, Command::Archive(_)) => {
                let Command::Archive(x) = &mut a.command else { unreachable!("matched above") };
                match arg.as_str() {
                    "--box" => x.box_id = Some(value(arg)?),
                    "--target" => x.target = Some(value(arg)?),
                    _ => x.action = Some(arg.clone()),
                }
            }
            "-h" | "--help" => a.command = Command::Help,
            "-V" | "--version" => a.command = Command::Version,
            other => return Err(usage_error(format!("unknown option {other:?}"))),
        }
    }
    Ok(a)
}

/// `probe`: the V4L2 inventory as text or JSON; returns the exit code.
fn probe(json: bool) -> i32 {
    let inv = crate::kernel::v4l2::probe::inventory();
    if !json {
        print!("{}", crate::kernel::v4l2::probe::render_text(&inv));
        return 0;
    }
    match serde_json::to_string_pretty(&inv) {
        Ok(s) => {
            println!("{s}");
            0
        }
        Err(e) => {
            eprintln!("edgenvr: {e}");
            3
        }
    }
}

/// Runs the command line and returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let a = match parse(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("edgenvr: {e}");
            return 2;
        }
    };
    match a.command {
        Command::ThumbnailDecode { width } => return crate::thumb::child_main(width),
        Command::Help => {
            print!("{USAGE}");
            return 0;
        }
        Command::Version => {
            println!("edgenvr {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Command::Probe { json } => {
            crate::logging::init(a.log_level);
            return probe(json);
        }
        Command::Discover(d) => {
            crate::logging::init(a.log_level);
            return discover::main(a.config.as_deref(), &d);
        }
        _ => {}
    }
    crate::logging::init(a.log_level);
    let config = match Config::load(a.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            // Logging is set up: the log line is the one report (stderr, or the journal with
            // its priority under systemd).
            log::error!("{e}");
            return 2;
        }
    };
    let r = match a.command {
        Command::Run => {
            let shutdown = crate::shutdown::Shutdown::new();
            let hangups = match crate::service::handle_signals(shutdown.clone()) {
                Ok(h) => h,
                Err(e) => {
                    log::error!("cannot install signal handlers: {e}");
                    return 3;
                }
            };
            crate::service::run(&config, a.config.as_deref(), shutdown, hangups).map(|()| 0)
        }
        Command::Check { repair } => check::run(&config, repair),
        Command::Export(e) => export::run(&config, &e),
        Command::Status { json } => status::run(&config, json),
        Command::Event(e) => event::run(&config, &e),
        Command::Archive(x) => archive::run(&config, &x),
        Command::Help
        | Command::Version
        | Command::Probe { .. }
        | Command::ThumbnailDecode { .. }
        | Command::Discover(_) => {
            unreachable!("handled above")
        }
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e}");
            if e.kind() == ErrorKind::InvalidArgument {
                2
            } else {
                3
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Args, Error> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn parses_commands_and_options() {
        assert_eq!(p("").unwrap().command, Command::Run);
        assert_eq!(p("--config x.toml").unwrap().config, Some(PathBuf::from("x.toml")));
        assert_eq!(p("check --repair --config a").unwrap().command, Command::Check { repair: true });
        assert_eq!(p("run --log-level debug").unwrap().log_level, Some(LevelFilter::Debug));
        assert_eq!(p("--version").unwrap().command, Command::Version);
        assert_eq!(p("probe --json").unwrap().command, Command::Probe { json: true });
        let Command::Discover(d) =
            p("discover --timeout 5s --username admin --password-file /pw --json").unwrap().command
        else {
            panic!("not discover")
        };
        assert_eq!((d.timeout.as_deref(), d.username.as_deref(), d.json), (Some("5s"), Some("admin"), true));
        assert_eq!(d.password_file, Some(PathBuf::from("/pw")));
        let Command::Archive(x) = p("archive restore --box b1 --target 1").unwrap().command else {
            panic!("not archive")
        };
        assert_eq!(
            (x.action.as_deref(), x.box_id.as_deref(), x.target.as_deref()),
            (Some("restore"), Some("b1"), Some("1"))
        );
        assert_eq!(p("thumbnail-decode --width 320").unwrap().command, Command::ThumbnailDecode { width: 320 });
        let Command::Event(e) = p("event start door --label bell --at 1795272963 --json").unwrap().command else {
            panic!("not event")
        };
        assert_eq!(
            (e.action.as_deref(), e.target.as_deref(), e.label.as_deref()),
            (Some("start"), Some("door"), Some("bell"))
        );
        assert_eq!((e.at.as_deref(), e.json), (Some("1795272963"), true));
        for bad in [
            "frobnicate",
            "thumbnail-decode",
            "thumbnail-decode --width x",
            "run --repair",
            "--config",
            "--log-level loud",
            "run --bogus",
            "run --timeout 3s",
            "event end 1 2",
            "event list --label",
            "run restore",
        ] {
            assert_eq!(p(bad).unwrap_err().kind(), ErrorKind::InvalidArgument, "{bad}");
        }
    }
}
