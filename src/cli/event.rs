//! `edgenvr event start|end|list`: events over SSH. The command talks to the running
//! service's API at `[server] listen` (loopback when it listens on every address) with the
//! configured admin token, so the service's state and MQTT see the change exactly as for
//! an API call.
//!
//! When the service is not running, `start` and `end` refuse (exit 3) and say so: writing
//! the index behind the service's back would leave MQTT and Home Assistant unaware. `list`
//! then reads the index directly (read-only), saying so on stderr.

#![allow(clippy::print_stdout)] // the CLI talks to people on stdout

use crate::config::Config;
use crate::error::{Error, Result};
use crate::index::events::{EventFilter, EventRow};
use crate::time::{format_rfc3339, parse_time};
use crate::{bail, err};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

/// Most bytes of one reply read (a list page of at most 1000 events is under 1 MiB).
const MAX_REPLY: u64 = 4 << 20;

/// The options of `edgenvr event`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EventArgs {
    /// `start`, `end` or `list`.
    pub action: Option<String>,
    /// `start CAMERA` or `end EVENT`.
    pub target: Option<String>,
    /// `--label`.
    pub label: Option<String>,
    /// `--at` (start or end time).
    pub at: Option<String>,
    /// `--end` (a finished event's end).
    pub end: Option<String>,
    /// `--note`.
    pub note: Option<String>,
    /// `--camera` (list).
    pub camera: Option<String>,
    /// `--from` (list).
    pub from: Option<String>,
    /// `--to` (list).
    pub to: Option<String>,
    /// `--limit` (list).
    pub limit: Option<String>,
    /// `--json`.
    pub json: bool,
}

impl EventArgs {
    /// Takes a positional argument (the action, then its target); false when both are set.
    pub fn positional(&mut self, v: &str) -> bool {
        if self.action.is_none() {
            self.action = Some(v.to_owned());
        } else if self.target.is_none() {
            self.target = Some(v.to_owned());
        } else {
            return false;
        }
        true
    }

    /// Sets option `name` (one of [`EventArgs::OPTIONS`]).
    pub fn set(&mut self, name: &str, v: String) {
        let slot = match name {
            "--label" => &mut self.label,
            "--at" => &mut self.at,
            "--end" => &mut self.end,
            "--note" => &mut self.note,
            "--camera" => &mut self.camera,
            "--from" => &mut self.from,
            "--to" => &mut self.to,
            _ => &mut self.limit,
        };
        *slot = Some(v);
    }

    /// The options that take a value.
    pub const OPTIONS: [&'static str; 8] =
        ["--label", "--at", "--end", "--note", "--camera", "--from", "--to", "--limit"];
}

fn time_arg(name: &str, v: &Option<String>) -> Result<Option<i64>> {
    v.as_deref()
        .map(|s| parse_time(s).ok_or_else(|| err!(InvalidArgument, "{name} {s:?} is not RFC 3339 or Unix seconds")))
        .transpose()
}

/// The admin token the CLI sends, if the service has one (`token`, or the file
/// `token_file` names).
fn admin_token(config: &Config) -> Result<Option<String>> {
    super::status::token(config)
}

/// The service's API address, loopback when it listens on every address.
fn api_addr(config: &Config) -> SocketAddr {
    let a = config.server.listen;
    if a.ip().is_unspecified() {
        let lo: std::net::IpAddr =
            if a.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() };
        return SocketAddr::new(lo, a.port());
    }
    a
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_connect(Some(Duration::from_secs(3)))
            .timeout_global(Some(Duration::from_secs(30)))
            .build(),
    )
}

/// Calls the service: `body` `Some` = POST it as JSON. Returns (status, JSON reply).
/// `Err` with kind `Io` when nothing answers.
fn call(config: &Config, method_post: Option<&Value>, path: &str) -> Result<(u16, Value)> {
    let addr = api_addr(config);
    let url = format!("http://{addr}{path}");
    let agent = agent();
    let unreachable = |e: ureq::Error| {
        err!(
            Io,
            "the service does not answer at {addr}; is it running? (systemctl status edgenvr). `edgenvr event` \
             talks to it so that its state and MQTT see the change"
        )
        .with_source(e)
    };
    let auth = admin_token(config)?.map(|t| format!("Bearer {t}"));
    let mut resp = match method_post {
        Some(body) => {
            let mut r = agent.post(&url).header("Content-Type", "application/json");
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.send(body.to_string()).map_err(unreachable)?
        }
        None => {
            let mut r = agent.get(&url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call().map_err(unreachable)?
        }
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().with_config().limit(MAX_REPLY).read_to_string().map_err(unreachable)?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !(200..300).contains(&status) {
        let msg = v.get("error").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| v.to_string());
        let kind = match status {
            400 | 422 => crate::error::ErrorKind::InvalidArgument,
            404 => crate::error::ErrorKind::NotFound,
            _ => crate::error::ErrorKind::Io,
        };
        return Err(Error::new(kind, format!("the service answered {status}: {msg}")));
    }
    Ok((status, v))
}

fn print_event(e: &Value) {
    let end = e["end"].as_str().unwrap_or("(open)");
    let note = e["note"].as_str().map(|n| format!("  {n}")).unwrap_or_default();
    println!(
        "{:>6}  {:<16} {:<16} {:<7} {} .. {}{note}",
        e["id"],
        e["camera"].as_str().unwrap_or(""),
        e["label"].as_str().unwrap_or(""),
        e["source"].as_str().unwrap_or(""),
        e["start"].as_str().unwrap_or(""),
        end
    );
}

fn row_json(e: &EventRow) -> Value {
    json!({
        "id": e.id, "camera": e.camera, "label": e.label, "source": e.source,
        "start": format_rfc3339(e.start_us), "end": e.end_us.map(format_rfc3339), "note": e.note,
    })
}

/// Runs `edgenvr event ...`; returns the exit code.
pub fn run(config: &Config, a: &EventArgs) -> Result<i32> {
    match a.action.as_deref() {
        Some("start") => {
            let Some(camera) = &a.target else { bail!(InvalidArgument, "event start needs a camera id") };
            let mut body = json!({"label": a.label.as_deref().unwrap_or("manual"), "source": "cli"});
            if let Some(t) = time_arg("--at", &a.at)? {
                body["start"] = json!(format_rfc3339(t));
            }
            if let Some(t) = time_arg("--end", &a.end)? {
                body["end"] = json!(format_rfc3339(t));
            }
            if let Some(n) = &a.note {
                body["note"] = json!(n);
            }
            checked_camera(camera)?;
            let path = format!("/api/v1/cameras/{camera}/events");
            let (_, v) = call(config, Some(&body), &path)?;
            show(a.json, &v);
            Ok(0)
        }
        Some("end") => {
            let Some(id) = &a.target else { bail!(InvalidArgument, "event end needs an event id") };
            let id = crate::index::events::parse_event_id(id)?;
            let mut body = json!({});
            if let Some(t) = time_arg("--at", &a.at)? {
                body["end"] = json!(format_rfc3339(t));
            }
            let (_, v) = call(config, Some(&body), &format!("/api/v1/events/{id}/end"))?;
            show(a.json, &v);
            Ok(0)
        }
        Some("list") => list(config, a),
        Some(other) => bail!(InvalidArgument, "event {other:?}: use start, end or list"),
        None => bail!(InvalidArgument, "event needs start, end or list"),
    }
}

/// A camera id goes into the URL as it is: only ids the config could hold pass.
fn checked_camera(c: &str) -> Result<()> {
    if !crate::config::valid_camera_id(c) {
        bail!(NotFound, "no camera {c:?}");
    }
    Ok(())
}

fn show(json_out: bool, v: &Value) {
    if json_out {
        println!("{v}");
    } else {
        print_event(v);
    }
}

fn list(config: &Config, a: &EventArgs) -> Result<i32> {
    let from = time_arg("--from", &a.from)?;
    let to = time_arg("--to", &a.to)?;
    let limit: usize = match &a.limit {
        None => 100,
        Some(l) => l
            .parse()
            .ok()
            .filter(|&n| (1..=1000).contains(&n))
            .ok_or_else(|| err!(InvalidArgument, "--limit must be 1 to 1000"))?,
    };
    let mut q = vec![format!("limit={limit}")];
    if let Some(c) = &a.camera {
        checked_camera(c)?;
        q.push(format!("camera={c}"));
    }
    if let Some(l) = &a.label {
        crate::events::check_label(l)?;
        q.push(format!("label={l}"));
    }
    for (k, v) in [("from", from), ("to", to)] {
        if let Some(v) = v {
            q.push(format!("{k}={}", v / 1_000_000));
        }
    }
    let events: Vec<Value> = match call(config, None, &format!("/api/v1/events?{}", q.join("&"))) {
        Ok((_, v)) => v["events"].as_array().cloned().unwrap_or_default(),
        Err(e) if e.kind() == crate::error::ErrorKind::Io => {
            eprintln!("edgenvr: {e}; reading the index directly");
            let index = crate::index::Index::open(&config.index_path)?;
            let f = EventFilter {
                camera: a.camera.clone(),
                label: a.label.clone(),
                from_us: from.unwrap_or(i64::MIN / 2),
                to_us: to.unwrap_or(i64::MAX),
            };
            index.events_page(&f, (i64::MIN, 0), limit)?.iter().map(row_json).collect()
        }
        Err(e) => return Err(e),
    };
    if a.json {
        println!("{}", json!({ "events": events }));
    } else {
        for e in &events {
            print_event(e);
        }
    }
    Ok(0)
}
