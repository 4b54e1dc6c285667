//! MQTT over TLS (cargo feature `tls`) against a real Mosquitto with a TLS listener on
//! 127.0.0.1, its CA and server certificate made by `openssl` here: with the right
//! `ca_file` the service connects, takes a command and tells the event to a TLS subscriber;
//! with a CA that did not sign the broker's certificate it says so in the log, status shows
//! the broker down, and recording goes on.
#![cfg(feature = "tls")]

mod common;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A self-signed CA `name`.pem/.key in `dir`.
fn make_ca(dir: &Path, name: &str) {
    sh(&format!(
        "cd {} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
         -subj /CN={name} -keyout {name}.key -out {name}.pem 2>&1",
        dir.display()
    ));
}

/// server.pem/.key for 127.0.0.1, signed by the CA `ca`.
fn make_server_cert(dir: &Path, ca: &str) {
    sh(&format!(
        "cd {} && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
         -keyout server.key -out server.csr 2>&1 && printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && \
         openssl x509 -req -in server.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial -days 2 \
         -extfile san.ext -out server.pem 2>&1",
        dir.display()
    ));
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(d: &Path, http: u16, port: u16, ca: &str) -> std::path::PathBuf {
    let path = d.join(format!("edgenvr-{ca}.toml"));
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:{http}\"\nbox_id = \"shed\"\n\
             [mqtt]\nhost = \"127.0.0.1\"\nport = {port}\ntls = true\nca_file = \"{}\"\n\
             [[storage]]\npath = \"{}\"\nmin_free = \"0\"\n{}",
            d.join(format!("{ca}.pem")).display(),
            d.join("data").display(),
            testsrc_camera("door", 1.0, 100_000)
        ),
    )
    .unwrap();
    path
}

#[test]
fn tls_broker_with_its_ca_and_a_wrong_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_ca(d, "ca");
    make_ca(d, "other");
    make_server_cert(d, "ca");
    let port = free_port();
    // `user root`: run as root, Mosquitto drops to its own user before it reads the key,
    // which sits in our private temporary directory (as non-root nothing changes).
    let conf = d.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\ncafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n\
             allow_anonymous true\npersistence false\nuser root\n",
            d.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(d.join("mosquitto.log")).unwrap();
    let _broker = Kill(
        Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("mosquitto (scripts/install-deps.sh test installs it)"),
    );
    wait_for(Duration::from_secs(10), "mosquitto to listen", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
    let tls = |cmd: &str| format!("{cmd} -h 127.0.0.1 -p {port} --cafile {}/ca.pem", d.display());
    let sub_log = d.join("sub.log");
    let _sub = Kill(
        Command::new("sh")
            .args(["-c", &format!("exec {} -t '#' -F '%t %p' > {}", tls("mosquitto_sub"), sub_log.display())])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let sub_has = |f: &dyn Fn(&str) -> bool| std::fs::read_to_string(&sub_log).unwrap_or_default().lines().any(f);

    // The broker's CA: connected; a command over TLS starts an event, told over TLS.
    let http = free_port();
    let svc = Service::start(&config(d, http, port, "ca"), d);
    wait_for(Duration::from_secs(20), "availability online over TLS", || {
        sub_has(&|l| l == "edgenvr/shed/availability online").then_some(())
    });
    sh(&format!(
        "{} -q 1 -t edgenvr/shed/camera/door/event/set -m '{{\"action\":\"start\",\"label\":\"tls\"}}'",
        tls("mosquitto_pub")
    ));
    wait_for(Duration::from_secs(10), "the event start message over TLS", || {
        sub_has(&|l| l.starts_with("edgenvr/shed/camera/door/event {") && l.contains(r#""type":"start""#)).then_some(())
    });
    assert_eq!(common::http::get(http, "/api/v1/status").json()["mqtt"]["connected"], true);
    svc.stop();

    // A CA that did not sign the broker's certificate: a clear log line, status down,
    // recording goes on.
    let http = free_port();
    let svc = Service::start(&config(d, http, port, "other"), d);
    let line = wait_for(Duration::from_secs(20), "the TLS failure in the log", || {
        svc.log_text().lines().find(|l| l.contains("mqtt: tls://127.0.0.1")).map(str::to_owned)
    });
    assert!(line.contains("certificate") && line.contains("UnknownIssuer"), "{line}");
    wait_for(Duration::from_secs(20), "recording without the broker", || {
        let s = common::http::get(http, "/api/v1/status").json();
        (s["mqtt"]["connected"] == false && s["cameras"][0]["frames"].as_u64() > Some(15)).then_some(())
    });
    svc.stop();
}
