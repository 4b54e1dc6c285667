//! MQTT and Home Assistant against a real Mosquitto (Debian's, started here on 127.0.0.1 with
//! its own config and password file): discovery payloads carry the keys Home Assistant
//! documents; an event started over MQTT is indexed; the broker killed and restarted
//! mid-run loses no event message (the event ends while the broker is down) and recording
//! loses no frame; discovery is republished to the restarted broker and when Home Assistant
//! says `online`; the broker password never reaches the log.

mod common;
use common::*;
use edgenvr::index::events::EventFilter;
use edgenvr::index::Index;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SERVICE_PASSWORD: &str = "s3cret-broker-pw-8c1f";
const PROBE: [&str; 4] = ["-u", "probe", "-P", "probe-pw"];

/// A Mosquitto on `port` that knows `users`.
struct Broker {
    child: Child,
    dir: PathBuf,
}

impl Broker {
    fn write_users(dir: &Path, users: &[(&str, &str)]) {
        let f = dir.join("passwd");
        let _ = std::fs::remove_file(&f);
        std::fs::write(&f, "").unwrap();
        for (u, p) in users {
            sh(&format!("mosquitto_passwd -b {} {u} {p}", f.display()));
        }
    }

    fn start(dir: &Path, port: u16, users: &[(&str, &str)]) -> Broker {
        Broker::write_users(dir, users);
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\n",
                dir.join("passwd").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("mosquitto.log")).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("mosquitto (scripts/install-deps.sh test installs it)");
        wait_for(Duration::from_secs(10), "mosquitto to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Broker { child, dir: dir.to_owned() }
    }

    /// Rewrites the password file and has the broker reload it (SIGHUP).
    fn set_users(&self, users: &[(&str, &str)]) {
        Broker::write_users(&self.dir, users);
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGHUP) };
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mosquitto_sub` on every topic, one `retained topic payload` line per message.
struct Sub {
    child: Child,
    log: PathBuf,
}

impl Sub {
    fn start(port: u16, log: PathBuf) -> Sub {
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "#", "-q", "1", "-F", "%r %t %x"])
            .args(PROBE)
            .stdout(f)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Sub { child, log }
    }

    /// `(topic, payload)` of every message so far (payloads arrive hex-encoded, so a JPEG
    /// stays on its line; text payloads are returned as text).
    fn messages(&self) -> Vec<(String, Vec<u8>)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(' ').and_then(|(_, rest)| rest.split_once(' ')))
            .map(|(t, hex)| {
                let bytes = (0..hex.len() / 2).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok());
                (t.to_owned(), bytes.collect())
            })
            .collect()
    }

    fn lines(&self) -> Vec<(String, String)> {
        self.messages().into_iter().map(|(t, p)| (t, String::from_utf8_lossy(&p).into_owned())).collect()
    }

    fn count(&self, f: impl Fn(&str, &str) -> bool) -> usize {
        self.lines().iter().filter(|(t, p)| f(t, p)).count()
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn publish(port: u16, topic: &str, payload: &str) {
    sh(&format!("mosquitto_pub -h 127.0.0.1 -p {port} {} -q 1 -t '{topic}' -m '{payload}'", PROBE.join(" ")));
}

/// The discovery configs carry the keys Home Assistant's MQTT binary sensor and sensor
/// documentation names (state topic, payloads, availability, unique id, device).
fn check_discovery(sub: &Sub) {
    let configs: Vec<(String, Value)> = sub
        .lines()
        .into_iter()
        .filter(|(t, _)| t.starts_with("homeassistant/") && t.ends_with("/config"))
        .map(|(t, p)| (t, serde_json::from_str(&p).expect("discovery config is JSON")))
        .collect();
    let find = |suffix: &str| {
        configs
            .iter()
            .find(|(t, _)| t.ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix} in {configs:?}"))
            .1
            .clone()
    };
    for c in [find("edgenvr_shed_door/recording/config"), find("edgenvr_shed_door/event/config")] {
        for k in ["name", "unique_id", "state_topic", "payload_on", "payload_off", "availability_topic"] {
            assert!(c[k].is_string(), "binary sensor without {k}: {c}");
        }
        assert!(c["device"]["identifiers"][0].is_string(), "{c}");
        assert!(c["state_topic"].as_str().unwrap().starts_with("edgenvr/shed/camera/door/"));
    }
    let free = find("binary_sensor/edgenvr_shed_door/recording/config");
    assert_eq!(free["device_class"], "running");
    let free = find("sensor/edgenvr_shed/free_space/config");
    for k in ["name", "unique_id", "state_topic", "value_template", "unit_of_measurement", "device_class"] {
        assert!(free[k].is_string(), "sensor without {k}: {free}");
    }
    assert_eq!(free["device_class"], "data_size");
    let cam = find("camera/edgenvr_shed_door/thumbnail/config");
    for k in ["name", "unique_id", "topic", "availability_topic"] {
        assert!(cam[k].is_string(), "camera without {k}: {cam}");
    }
}

/// Discovery follows the camera list: a camera added over the API is announced, and when
/// it is deleted its configs and state are cleared (empty retained payloads: Home Assistant
/// removes the entities, the broker forgets them).
fn camera_added_and_removed_over_the_api(http: u16, sub: &Sub) {
    let json = [("Content-Type", "application/json")];
    let body = br#"{"id": "gate", "source": "testsrc", "width": 64, "height": 48, "fps": 5}"#;
    let r = common::http::send(http, "POST", "/api/v1/cameras", &json, body);
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    let config = "homeassistant/binary_sensor/edgenvr_shed_gate/recording/config";
    let doc = wait_for(Duration::from_secs(10), "the added camera's discovery config", || {
        sub.lines().into_iter().find(|(t, p)| t == config && !p.is_empty()).map(|m| m.1)
    });
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["state_topic"], "edgenvr/shed/camera/gate/recording");
    wait_for(Duration::from_secs(10), "the added camera's thumbnail entity and state", || {
        (sub.count(|t, p| t.ends_with("edgenvr_shed_gate/thumbnail/config") && !p.is_empty()) == 1
            && sub.count(|t, _| t == "edgenvr/shed/camera/gate/recording") >= 1)
            .then_some(())
    });
    let r = common::http::send(http, "DELETE", "/api/v1/cameras/gate", &[], b"");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let cleared = |t: &str| sub.count(|topic, p| topic == t && p.is_empty()) == 1;
    wait_for(Duration::from_secs(10), "the removed camera's configs and state cleared", || {
        ([
            config,
            "homeassistant/binary_sensor/edgenvr_shed_gate/event/config",
            "homeassistant/camera/edgenvr_shed_gate/thumbnail/config",
            "edgenvr/shed/camera/gate/recording",
        ]
        .iter()
        .all(|t| cleared(t)))
        .then_some(())
    });
    assert_eq!(sub.count(|t, p| t.ends_with("edgenvr_shed_door/recording/config") && p.is_empty()), 0);
}

#[test]
fn home_assistant_discovery_events_in_and_out_and_a_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bdir = d.join("broker");
    std::fs::create_dir(&bdir).unwrap();
    let port = free_port();
    let users = [("edgenvr", SERVICE_PASSWORD), ("probe", "probe-pw")];
    let broker = Broker::start(&bdir, port, &users);
    std::fs::write(d.join("mqtt-password"), format!("{SERVICE_PASSWORD}\n")).unwrap();
    let http = free_port();
    let config = d.join("edgenvr.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{http}\"\nbox_id = \"shed\"\n[recording]\nsync_interval = \"500ms\"\nmax_duration = \"3s\"\n\
             [mqtt]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"edgenvr\"\npassword_file = \"{}\"\nthumbnail_interval = \"10s\"\n\
             [[storage]]\npath = \"{}\"\nmin_free = \"0\"\n{}",
            d.join("mqtt-password").display(),
            d.join("data").display(),
            testsrc_camera("door", 1.0, 100_000)
        ),
    )
    .unwrap();
    let sub = Sub::start(port, d.join("sub-a.log"));
    std::thread::sleep(Duration::from_millis(300));
    let svc = Service::start(&config, d);
    wait_for(Duration::from_secs(20), "discovery configs and availability", || {
        (sub.count(|t, _| t.ends_with("/config")) >= 3
            && sub.count(|t, p| t == "edgenvr/shed/availability" && p == "online") >= 1)
            .then_some(())
    });
    check_discovery(&sub);
    camera_added_and_removed_over_the_api(http, &sub);

    // An event started over MQTT is indexed, and told as it starts.
    publish(port, "edgenvr/shed/camera/door/event/set", r#"{"action":"start","label":"doorbell"}"#);
    let index = Index::open(&d.join("data/index.db")).unwrap();
    let all = EventFilter { from_us: 0, to_us: i64::MAX, ..Default::default() };
    let ev = wait_for(Duration::from_secs(10), "the MQTT event in the index", || {
        index.events_page(&all, (i64::MIN, 0), 10).unwrap().into_iter().next()
    });
    assert_eq!((ev.camera.as_str(), ev.label.as_str(), ev.source.as_str()), ("door", "doorbell", "mqtt"));
    wait_for(Duration::from_secs(10), "the start message", || {
        (sub.count(|t, p| t == "edgenvr/shed/camera/door/event" && p.contains(r#""type":"start""#)) == 1).then_some(())
    });
    wait_for(Duration::from_secs(10), "event_active ON", || {
        (sub.count(|t, p| t == "edgenvr/shed/camera/door/event_active" && p == "ON") >= 1).then_some(())
    });

    // The broker dies; the event ends (max_duration 3 s) while it is down.
    broker.kill();
    drop(sub);
    wait_for(Duration::from_secs(15), "max_duration to close the event", || {
        index.event(ev.id).unwrap().and_then(|e| e.end_us)
    });
    // It comes back, at first refusing the service, so the test's subscriber is listening
    // before the service can publish anything.
    let broker = Broker::start(&bdir, port, &users[1..]);
    let sub = Sub::start(port, d.join("sub-b.log"));
    wait_for(Duration::from_secs(10), "the subscriber on the restarted broker", || {
        publish(port, "test/marker", "m");
        (sub.count(|t, _| t == "test/marker") > 0).then_some(())
    });
    broker.set_users(&users);
    let end = wait_for(Duration::from_secs(60), "the end message after the restart", || {
        sub.lines().into_iter().find(|(t, p)| t == "edgenvr/shed/camera/door/event" && p.contains(r#""type":"end""#))
    });
    let end: Value = serde_json::from_str(&end.1).unwrap();
    assert_eq!(end["id"], ev.id, "{end}");
    assert_eq!(end["label"], "doorbell");
    // A restarted broker lost its retained messages: discovery came again.
    wait_for(Duration::from_secs(10), "discovery on the restarted broker", || {
        (sub.count(|t, _| t.ends_with("/config")) >= 3).then_some(())
    });
    check_discovery(&sub);
    assert_eq!(sub.count(|t, p| t.contains("edgenvr_shed_gate") && !p.is_empty()), 0, "a removed camera came back");
    // Home Assistant coming online gets discovery again.
    let before = sub.count(|t, _| t.ends_with("/config"));
    publish(port, "homeassistant/status", "online");
    wait_for(Duration::from_secs(10), "discovery after homeassistant/status online", || {
        (sub.count(|t, _| t.ends_with("/config")) >= before + 3).then_some(())
    });
    assert_eq!(sub.count(|t, p| t.ends_with("/event") && p.contains(r#""type":"end""#)), 1, "sent once");

    // The camera entity's picture: a JPEG of the latest keyframe, at most every 10 s.
    let jpeg = wait_for(Duration::from_secs(30), "a thumbnail", || {
        sub.messages().into_iter().find(|(t, _)| t == "edgenvr/shed/camera/door/thumbnail").map(|m| m.1)
    });
    assert_eq!(&jpeg[..2], [0xff, 0xd8], "a JPEG");

    // Recording lost no frame through all of it.
    let status = common::http::get(http, "/api/v1/status").json();
    let cam = &status["cameras"][0];
    assert_eq!((cam["frames_dropped"].as_u64(), cam["gaps"].as_u64()), (Some(0), Some(0)), "{status}");
    assert!(cam["frames"].as_u64().unwrap() > 0, "{status}");
    let log = svc.log_text();
    svc.stop();
    assert!(!log.contains(SERVICE_PASSWORD), "the broker password reached the log");
    assert!(log.contains("mqtt: connected"), "{log}");
}
