//! Topics and payloads: what edgenvr publishes, Home Assistant's discovery configs, and the
//! command topic that starts and ends events. Every topic level is an id the config checked
//! (`A-Z a-z 0-9 - _`), so no level holds a wildcard or a separator.
//!
//! Under `{prefix}/{box_id}/`:
//! - `availability`: `online` / `offline` (retained; `offline` is the last will);
//! - `storage`: `{"free_bytes", "total_bytes", "roots": [...]}` (retained);
//! - `camera/{id}/recording`, `camera/{id}/event_active`: `ON` / `OFF` (retained);
//! - `camera/{id}/event`: an event's JSON as it starts and ends (QoS 1, not retained);
//! - `camera/{id}/event/set` (subscribed): `ON` / `OFF`, or
//!   `{"action": "start" | "end", "label": "...", "note": "..."}`.

use crate::config::MqttConfig;
use crate::events::Change;
use crate::index::events::EventRow;
use crate::time::format_rfc3339;
use serde_json::{json, Value};

/// The label of an event started by a bare `ON`.
pub const DEFAULT_LABEL: &str = "trigger";

/// Builds topics for one box.
#[derive(Clone, Debug)]
pub struct Topics {
    base: String,
    discovery: String,
    box_id: String,
}

impl Topics {
    /// Topics of box `box_id` under `cfg`'s prefixes.
    pub fn new(cfg: &MqttConfig, box_id: &str) -> Topics {
        Topics {
            base: format!("{}/{box_id}", cfg.prefix),
            discovery: cfg.discovery_prefix.clone(),
            box_id: box_id.to_owned(),
        }
    }

    /// `online` / `offline`.
    pub fn availability(&self) -> String {
        format!("{}/availability", self.base)
    }

    /// Storage status.
    pub fn storage(&self) -> String {
        format!("{}/storage", self.base)
    }

    /// A camera's topic `what`.
    pub fn camera(&self, camera: &str, what: &str) -> String {
        format!("{}/camera/{camera}/{what}", self.base)
    }

    /// The command topics of every camera (one subscription).
    pub fn commands(&self) -> String {
        format!("{}/camera/+/event/set", self.base)
    }

    /// Home Assistant's status topic (it says `online` when it starts).
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.discovery)
    }

    /// The camera a command topic names, if `topic` is one.
    pub fn command_camera<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let rest = topic.strip_prefix(self.base.as_str())?.strip_prefix("/camera/")?;
        rest.strip_suffix("/event/set").filter(|c| !c.contains('/'))
    }

    fn box_device(&self) -> Value {
        json!({
            "identifiers": [format!("edgenvr_{}", self.box_id)],
            "name": format!("edgenvr {}", self.box_id),
            "manufacturer": "edgenvr",
            "model": "network video recorder",
            "sw_version": env!("CARGO_PKG_VERSION"),
        })
    }

    fn camera_device(&self, camera: &str) -> Value {
        json!({
            "identifiers": [format!("edgenvr_{}_{camera}", self.box_id)],
            "name": format!("{camera} ({})", self.box_id),
            "manufacturer": "edgenvr",
            "model": "camera",
            "via_device": format!("edgenvr_{}", self.box_id),
        })
    }

    /// Home Assistant discovery configs `(topic, JSON)` of one camera: a binary sensor
    /// "recording" and one "event active" (and with `thumbnails`, a camera entity fed by
    /// `camera/{id}/thumbnail`). Keys as Home Assistant's MQTT binary sensor and camera
    /// documentation names them. An empty retained payload on the same topics removes the
    /// entities again ([`Topics::camera_retained`]).
    pub fn camera_discovery(&self, cam: &str, thumbnails: bool) -> Vec<(String, Vec<u8>)> {
        let mut v = Vec::with_capacity(3);
        let avail = self.availability();
        let node = format!("edgenvr_{}_{cam}", self.box_id);
        for (object, name, state, class) in
            [("recording", "Recording", "recording", Some("running")), ("event", "Event active", "event_active", None)]
        {
            let mut c = json!({
                "name": name,
                "unique_id": format!("{node}_{object}"),
                "object_id": format!("{node}_{object}"),
                "state_topic": self.camera(cam, state),
                "payload_on": "ON",
                "payload_off": "OFF",
                "availability_topic": avail,
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": self.camera_device(cam),
            });
            if let Some(class) = class {
                c["device_class"] = class.into();
            }
            v.push((format!("{}/binary_sensor/{node}/{object}/config", self.discovery), c.to_string().into_bytes()));
        }
        if thumbnails {
            let c = json!({
                "name": "Thumbnail",
                "unique_id": format!("{node}_thumbnail"),
                "object_id": format!("{node}_thumbnail"),
                "topic": self.camera(cam, "thumbnail"),
                "availability_topic": avail,
                "payload_available": "online",
                "payload_not_available": "offline",
                "device": self.camera_device(cam),
            });
            v.push((format!("{}/camera/{node}/thumbnail/config", self.discovery), c.to_string().into_bytes()));
        }
        v
    }

    /// Every retained topic a camera may have (its discovery configs, with or without a
    /// thumbnail entity, and its state): what is cleared when the camera goes.
    pub fn camera_retained(&self, cam: &str) -> Vec<String> {
        let mut v: Vec<String> = self.camera_discovery(cam, true).into_iter().map(|(t, _)| t).collect();
        v.extend(["recording", "event_active", "thumbnail"].map(|what| self.camera(cam, what)));
        v
    }

    /// The box's discovery config: a sensor "free space" (Home Assistant's MQTT sensor keys).
    pub fn box_discovery(&self) -> (String, Vec<u8>) {
        let avail = self.availability();
        let node = format!("edgenvr_{}", self.box_id);
        let free = json!({
            "name": "Free space",
            "unique_id": format!("{node}_free_space"),
            "object_id": format!("{node}_free_space"),
            "state_topic": self.storage(),
            "value_template": "{{ value_json.free_bytes }}",
            "unit_of_measurement": "B",
            "device_class": "data_size",
            "state_class": "measurement",
            "availability_topic": avail,
            "payload_available": "online",
            "payload_not_available": "offline",
            "device": self.box_device(),
        });
        (format!("{}/sensor/{node}/free_space/config", self.discovery), free.to_string().into_bytes())
    }
}

/// An event's JSON: what changed (`start` or `end`) and the event as the API shows it.
pub fn event_payload(c: &Change) -> (String, Vec<u8>) {
    let (what, e): (&str, &EventRow) = match c {
        Change::Started(e) => ("start", e),
        Change::Ended(e) => ("end", e),
    };
    let doc = json!({
        "type": what,
        "id": e.id,
        "camera": e.camera,
        "label": e.label,
        "source": e.source,
        "start": format_rfc3339(e.start_us),
        "start_us": e.start_us,
        "end": e.end_us.map(format_rfc3339),
        "end_us": e.end_us,
        "note": e.note,
    });
    (e.camera.clone(), doc.to_string().into_bytes())
}

/// A command on a camera's `event/set` topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Start an event with this label (and note).
    Start(String, Option<String>),
    /// End the camera's open events with this label.
    End(String),
}

/// Parses a command payload; `Err` says what is wrong (logged, never fatal).
pub fn parse_command(payload: &[u8]) -> Result<Command, String> {
    let text = std::str::from_utf8(payload).map_err(|_| "not UTF-8".to_owned())?.trim();
    match text {
        "ON" | "on" | "start" => return Ok(Command::Start(DEFAULT_LABEL.into(), None)),
        "OFF" | "off" | "end" => return Ok(Command::End(DEFAULT_LABEL.into())),
        _ => {}
    }
    let v: Value = serde_json::from_str(text).map_err(|_| "neither ON, OFF nor a JSON object".to_owned())?;
    let label = match v.get("label") {
        None => DEFAULT_LABEL.to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("label: must be a string".into()),
    };
    let note = match v.get("note") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("note: must be a string".into()),
    };
    match v.get("action").and_then(Value::as_str) {
        Some("start") => Ok(Command::Start(label, note)),
        Some("end") => Ok(Command::End(label)),
        _ => Err("action: must be \"start\" or \"end\"".into()),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Topics for box "shed" under the default prefixes (also used by `mqtt`'s tests).
    pub(in crate::mqtt) fn topics() -> Topics {
        let cfg = MqttConfig {
            host: "h".into(),
            port: 1883,
            username: None,
            password_file: None,
            prefix: "edgenvr".into(),
            discovery_prefix: "homeassistant".into(),
            thumbnail_interval: None,
            tls: false,
            ca_file: None,
        };
        Topics::new(&cfg, "shed")
    }

    #[test]
    fn command_topics_name_their_camera_and_nothing_else_matches() {
        let t = topics();
        assert_eq!(t.command_camera("edgenvr/shed/camera/door/event/set"), Some("door"));
        for other in [
            "edgenvr/shed/camera/door/event",
            "edgenvr/other/camera/door/event/set",
            "edgenvr/shed/camera/a/b/event/set",
        ] {
            assert_eq!(t.command_camera(other), None, "{other}");
        }
    }

    #[test]
    fn commands_parse_and_bad_ones_say_why() {
        assert_eq!(parse_command(b"ON"), Ok(Command::Start("trigger".into(), None)));
        assert_eq!(parse_command(b" OFF\n"), Ok(Command::End("trigger".into())));
        assert_eq!(
            parse_command(br#"{"action":"start","label":"door","note":"ring"}"#),
            Ok(Command::Start("door".into(), Some("ring".into())))
        );
        assert!(parse_command(b"\xff").unwrap_err().contains("UTF-8"));
        assert!(parse_command(br#"{"action":"jump"}"#).unwrap_err().starts_with("action:"));
        assert!(parse_command(br#"{"action":"start","label":3}"#).unwrap_err().starts_with("label:"));
    }
}
