//! The crate's one error type: a kind, a message that says what to do next, and an
//! optional source.
//!
//! Low-level parsers (the chunk format, NAL handling) return small specific enums; callers
//! turn those into an [`Error`] once, adding the camera, file and offset. The kind picks the
//! process exit code (`cli::main`) and the HTTP status (`http::status_for`, the one place
//! that mapping lives).
//!
//! Use it as designed:
//! - `err!(Kind, "format {args}")` builds one, `bail!(Kind, ...)` returns one;
//! - a cause goes in with [`Error::with_source`] (or [`Error::io`], [`Error::db`]), not into
//!   the message: `Display` prints the whole chain, `message: cause: cause's cause`;
//! - what reaches a user (a log line, an HTTP body, the CLI) is `Display`, never `{e:?}`.

use std::fmt;

/// What went wrong, coarsely: enough to choose an exit code or an HTTP status.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The configuration or a command-line argument is wrong; the user must fix it.
    InvalidArgument,
    /// A file, camera, chunk or root that was asked for does not exist.
    NotFound,
    /// Stored data is damaged (a torn chunk, an index row that disagrees with its file).
    DataLoss,
    /// The disk is full.
    NoSpace,
    /// An operating-system or I/O call failed.
    Io,
    /// The index database failed.
    Database,
    /// The encoder or a camera failed.
    Media,
    /// A bounded resource is in use (the thumbnail decoder, the live viewer cap); retry
    /// later.
    Busy,
    /// Something that should be impossible happened.
    Internal,
}

/// An error with a kind, a human message and the underlying cause.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    msg: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an error from a kind and a message.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error { kind, msg: msg.into(), source: None }
    }

    /// Attaches the underlying cause, which `Display` prints after the message. Takes any
    /// error, boxed or not (some libraries hand out `Box<dyn Error + Send + Sync>`).
    pub fn with_source(mut self, source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The coarse kind, for exit codes and HTTP statuses.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the cause chain.
    pub fn msg(&self) -> &str {
        &self.msg
    }

    /// Wraps an I/O error, classifying `ENOSPC` as [`ErrorKind::NoSpace`] so callers can react
    /// to a full disk without inspecting raw OS errors.
    pub fn io(msg: impl Into<String>, e: std::io::Error) -> Self {
        let kind = if e.raw_os_error() == Some(libc::ENOSPC) {
            ErrorKind::NoSpace
        } else if e.kind() == std::io::ErrorKind::NotFound {
            ErrorKind::NotFound
        } else {
            ErrorKind::Io
        };
        Error::new(kind, msg).with_source(e)
    }

    /// Wraps an SQLite error.
    pub fn db(msg: impl Into<String>, e: rusqlite::Error) -> Self {
        Error::new(ErrorKind::Database, msg).with_source(e)
    }
}

impl fmt::Display for Error {
    /// Prints the message followed by every cause in the chain, so one log line says it all.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)?;
        let mut cause: Option<&(dyn std::error::Error + 'static)> = self.source.as_deref().map(|e| e as _);
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

/// Builds an [`Error`] with `format!` arguments: `err!(NotFound, "no camera {id}")`.
#[macro_export]
macro_rules! err {
    ($kind:ident, $($arg:tt)+) => {
        $crate::error::Error::new($crate::error::ErrorKind::$kind, format!($($arg)+))
    };
}

/// Returns early with an [`Error`]: `bail!(InvalidArgument, "bad {x}")`.
#[macro_export]
macro_rules! bail {
    ($kind:ident, $($arg:tt)+) => {
        return Err($crate::err!($kind, $($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_includes_cause_chain() {
        let e = Error::io("writing chunk", std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(e.kind(), ErrorKind::NoSpace);
        let s = e.to_string();
        assert!(s.starts_with("writing chunk: "), "{s}");
        assert!(s.contains("No space left"), "{s}");
    }

    #[test]
    fn macros_format() {
        let e = err!(NotFound, "camera {} unknown", "door");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.to_string(), "camera door unknown");
    }

    #[test]
    fn bail_returns_early_and_causes_print_after_the_message() {
        fn positive(n: i64) -> Result<i64> {
            if n < 0 {
                crate::bail!(InvalidArgument, "{n} is negative");
            }
            Ok(n)
        }
        assert_eq!(positive(3).unwrap(), 3);
        let e = positive(-2).unwrap_err();
        assert_eq!((e.kind(), e.to_string()), (ErrorKind::InvalidArgument, "-2 is negative".to_owned()));
        let boxed: Box<dyn std::error::Error + Send + Sync> = "the library's words".into();
        let e = err!(Io, "starting the HTTP server").with_source(boxed);
        assert_eq!(e.to_string(), "starting the HTTP server: the library's words");
        assert_eq!(e.msg(), "starting the HTTP server");
    }
}
