//! RTSP over an impaired network: the camera (GStreamer's RTSP server) lives in a network
//! namespace the test creates, behind a veth pair, where the test rate-limits (tbf), drops
//! packets at random (iptables statistic) and finally blackholes the link. The recorder
//! survives every phase, records what arrives, notices the blackhole, and records cleanly
//! once the link heals. Addresses are the test's own, inside its own namespace.

mod common;
#[path = "common/rtsp.rs"]
mod rtsp_peers;

use common::*;
use edgenvr::time::now_us;
use rtsp_peers::*;
use std::path::Path;
use std::time::Duration;

/// A namespace with one veth pair: host side `.1`, namespace side `.2`. Removed on drop.
struct NetNs {
    name: String,
    host_if: String,
    ns_if: String,
    pub ns_addr: String,
}

impl NetNs {
    fn new() -> NetNs {
        let id = std::process::id() % 200 + 20;
        let n = NetNs {
            name: format!("envr-{}", std::process::id()),
            host_if: format!("envr-h{id}"),
            ns_if: format!("envr-n{id}"),
            ns_addr: format!("10.231.{id}.2"),
        };
        sh(&format!(
            "ip netns add {ns} && ip link add {h} type veth peer name {i} && ip link set {i} netns {ns} && \
             ip addr add 10.231.{id}.1/24 dev {h} && ip link set {h} up && \
             ip netns exec {ns} ip addr add 10.231.{id}.2/24 dev {i} && \
             ip netns exec {ns} ip link set {i} up && ip netns exec {ns} ip link set lo up",
            ns = n.name,
            h = n.host_if,
            i = n.ns_if
        ));
        n
    }

    fn exec(&self, cmd: &str) {
        sh(&format!("ip netns exec {} {cmd}", self.name));
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("sh")
            .args(["-c", &format!("ip netns del {} ; ip link del {} 2>/dev/null", self.name, self.host_if)])
            .status();
    }
}

fn rows_after(d: &Path, t: i64) -> Vec<edgenvr::index::ChunkRow> {
    rows(&d.join("index.db")).into_iter().filter(|r| r.start_us > t).collect()
}

#[test]
fn survives_rate_limit_loss_and_blackhole() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ns = NetNs::new();
    let port = 8554;
    let ns_prefix = ["ip", "netns", "exec", &ns.name];
    let server = RtspServer::start_with(port, &[("cam", Media::H264Small)], &ns_prefix);
    let url = format!("rtsp://{}:{port}/cam", ns.ns_addr);
    std::fs::write(
        d.join("edgenvr.toml"),
        format!(
            "[recording]\nsync_interval = \"1s\"\n[index]\npath = \"{}\"\n[[storage]]\npath = \"{}\"\n\
             [[camera]]\nid = \"cam\"\nurl = \"{url}\"\nfirst_frame_timeout = \"5s\"\nframe_timeout = \"2s\"\n",
            d.join("index.db").display(),
            d.join("data").display()
        ),
    )
    .unwrap();
    let cfg = d.join("edgenvr.toml");
    let svc = Service::start(&cfg, d);
    wait_for(Duration::from_secs(20), "recording through the veth", || {
        (d.join("index.db").exists() && !rows(&d.join("index.db")).is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));

    // Rate limit below the stream's bitrate.
    ns.exec(&format!("tc qdisc add dev {} root tbf rate 150kbit burst 16kbit latency 300ms", ns.ns_if));
    std::thread::sleep(Duration::from_secs(6));
    ns.exec(&format!("tc qdisc del dev {} root", ns.ns_if));
    // Random loss: 10 % of the camera's packets.
    ns.exec("iptables -A OUTPUT -m statistic --mode random --probability 0.10 -j DROP");
    std::thread::sleep(Duration::from_secs(6));
    ns.exec("iptables -F OUTPUT");
    // Blackhole: nothing gets through.
    ns.exec("iptables -A OUTPUT -j DROP && iptables -A INPUT -j DROP");
    wait_for(Duration::from_secs(15), "the blackhole to be detected", || {
        svc.log_text().contains("went silent").then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let t_heal = now_us();
    ns.exec("iptables -F OUTPUT && iptables -F INPUT");

    // Healed: recording resumes and what follows is clean.
    wait_for(Duration::from_secs(20), "recording after the link heals", || {
        (!rows_after(d, t_heal).is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_secs(5));
    assert!(svc.stop().success(), "the service survived every phase");
    drop(server);

    let after = rows_after(d, t_heal);
    let frames_after: u64 = after.iter().map(|r| r.frames).sum();
    assert!(frames_after >= 15 * 3, "only {frames_after} frames after the link healed");
    let files: Vec<_> = after.iter().map(|r| d.join("data").join(&r.rel_path)).collect();
    assert_eq!(ffmpeg_decode(&annex_b(&files), d), frames_after);
    // Everything recorded, impaired phases included, is structurally sound.
    let (code, out) = check(&cfg, false);
    assert_eq!(code, 0, "{out}");
}
