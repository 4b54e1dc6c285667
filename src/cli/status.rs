//! `edgenvr status [--json]`: asks the running service (its HTTP API at `[server] listen`,
//! with the configured token, or the one in `token_file`) and prints the same data as
//! `GET /api/v1/status`, laid out for a terminal, with the API token when it comes from
//! `token_file` (how the owner of a freshly flashed box learns it, over SSH). Exit status
//! 0 when healthy, 1 when not, 3 when the service does not answer.

#![allow(clippy::print_stdout)] // the CLI talks to people on stdout

use crate::config::Config;
use crate::error::Result;
use crate::{bail, err};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Most bytes read from the service (its documents are bounded; see `http::json`).
const MAX_REPLY: u64 = 1 << 20;

/// The admin token: `[server] token`, or the one in `token_file` (`None` if the service has
/// not made it yet).
pub(super) fn token(config: &Config) -> Result<Option<String>> {
    match (&config.server.token, &config.server.token_file) {
        (Some(t), _) => Ok(Some(t.expose().to_owned())),
        (None, Some(f)) => crate::http::token_file::read(f),
        (None, None) => Ok(None),
    }
}

/// GETs `path` from the service; returns (status, body).
fn get(config: &Config, token: Option<&str>, path: &str) -> Result<(u16, Vec<u8>)> {
    let mut addr = config.server.listen;
    if addr.ip().is_unspecified() {
        addr = SocketAddr::new(
            if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() },
            addr.port(),
        );
    }
    let unreachable = |e: std::io::Error| {
        err!(Io, "the service does not answer at {addr}; is it running? (systemctl status edgenvr)").with_source(e)
    };
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(unreachable)?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(unreachable)?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").map_err(unreachable)?;
    let mut raw = Vec::new();
    s.take(MAX_REPLY).read_to_end(&mut raw).map_err(unreachable)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| err!(Io, "malformed HTTP reply"))?;
    let status = std::str::from_utf8(&raw[..split])
        .ok()
        .and_then(|h| h.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| err!(Io, "malformed HTTP status line"))?;
    Ok((status, raw[split + 4..].to_vec()))
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// The storage part of `status`: each root's state, space and reaping.
fn print_storage(st: &serde_json::Value) {
    let s = |v: &serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    println!("\nstorage:");
    for r in st["storage"].as_array().into_iter().flatten() {
        let state = match (r["present"].as_bool(), r["writable"].as_bool()) {
            (Some(true), Some(true)) => "ok",
            (Some(true), _) => "NOT WRITABLE",
            _ => "ABSENT",
        };
        println!(
            "  {}  [{}]  free {} of {} (keep {}), recordings {}, oldest {}, reaped {}",
            s(&r["path"]),
            state,
            human_bytes(r["free_bytes"].as_u64().unwrap_or(0)),
            human_bytes(r["total_bytes"].as_u64().unwrap_or(0)),
            human_bytes(r["min_free_bytes"].as_u64().unwrap_or(0)),
            human_bytes(r["used_bytes"].as_u64().unwrap_or(0)),
            r["oldest"].as_str().unwrap_or("-"),
            human_bytes(r["bytes_reaped"].as_u64().unwrap_or(0)),
        );
        if let Some(e) = r["last_error"].as_str() {
            println!("    last error: {e}");
        }
    }
}

/// Runs `status`; returns the exit code.
pub fn run(config: &Config, json: bool) -> Result<i32> {
    let token = token(config)?;
    let (code, body) = get(config, token.as_deref(), "/api/v1/status")?;
    if code != 200 {
        bail!(Io, "the service answered {code}: {}", String::from_utf8_lossy(&body));
    }
    let (health_code, health) = get(config, token.as_deref(), "/api/v1/health")?;
    if json {
        println!("{}", String::from_utf8_lossy(&body));
        return Ok(if health_code == 200 { 0 } else { 1 });
    }
    let st: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| err!(Io, "bad status JSON").with_source(e))?;
    let h: serde_json::Value = serde_json::from_slice(&health).unwrap_or_default();
    let s = |v: &serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    println!(
        "edgenvr {}  up {} s  {}",
        s(&st["version"]),
        st["uptime_s"],
        if health_code == 200 { "HEALTHY" } else { "UNHEALTHY" }
    );
    for r in h["reasons"].as_array().into_iter().flatten() {
        println!("  ! {}", s(r));
    }
    for w in st["warnings"].as_array().into_iter().flatten() {
        println!("  WARNING: {}", s(w));
    }
    if let (Some(t), Some(f)) = (&token, &config.server.token_file) {
        println!("API token: {t}  (from {})", f.display());
    }
    println!("\ncameras:");
    println!(
        "  {:<16} {:<12} {:>10} {:>10} {:>9} {:>6} {:>7}  last error",
        "id", "state", "last frame", "kbit/s", "frames", "gaps", "dropped"
    );
    for c in st["cameras"].as_array().into_iter().flatten() {
        let age =
            c["last_frame_age_ms"].as_u64().map_or("-".to_owned(), |ms| format!("{:.1} s ago", ms as f64 / 1000.0));
        println!(
            "  {:<16} {:<12} {:>10} {:>10} {:>9} {:>6} {:>7}  {}",
            s(&c["id"]),
            s(&c["state"]),
            age,
            c["bitrate_bps"].as_u64().unwrap_or(0) / 1000,
            c["frames"].as_u64().unwrap_or(0),
            c["gaps"].as_u64().unwrap_or(0),
            c["frames_dropped"].as_u64().unwrap_or(0),
            c["last_error"].as_str().unwrap_or("")
        );
    }
    print_storage(&st);
    println!(
        "\nreaper: {} runs, last {}, deleted {} chunks ({})",
        st["reaper"]["runs"],
        st["reaper"]["last_run"].as_str().unwrap_or("-"),
        st["reaper"]["chunks_deleted"],
        human_bytes(st["reaper"]["bytes_deleted"].as_u64().unwrap_or(0))
    );
    Ok(if health_code == 200 { 0 } else { 1 })
}
