//! RTSP test peers: GStreamer's real RTSP server (tests/fixtures/rtsp_server.py) serving
//! media made by ffmpeg at test time, and a hostile server that misbehaves on purpose.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Test media, made once per build directory and reused.
#[derive(Copy, Clone, Debug)]
pub enum Media {
    /// 1920x1080, 30 fps, 3 Mbit/s, 1 s GOP: a realistic IP camera main stream.
    H264Hd,
    /// 1280x720, 30 fps, 4 slices per frame (several NALs per access unit).
    H264Slices,
    /// 1280x720, 25 fps, H.265.
    H265,
    /// 640x360, 15 fps, 1 s GOP: cheap, for fault tests.
    H264Small,
    /// 1280x720, 30 fps, 1 s closed GOP, IBBP (x264 `-bf 2`, no adaptive B-frames): served
    /// with presentation times from its `.pts` sidecar, as B-frame cameras send it.
    H264B,
    /// 640x360, 25 fps, 1 s closed GOP, IBBP (x265 `bframes=2`), likewise.
    H265B,
    /// 320x180, 15 fps, 1 s GOP: black with one white frame at every whole second (the
    /// keyframe), for A/V sync against the server's audio ticks (tests/av_sync.rs).
    H264Flash,
}

impl Media {
    /// (codec, fps, gop frames)
    pub fn params(self) -> (&'static str, u32, u32) {
        match self {
            Media::H264Hd => ("h264", 30, 30),
            Media::H264Slices => ("h264", 30, 30),
            Media::H265 => ("h265", 25, 25),
            Media::H264Small => ("h264", 15, 15),
            Media::H264B => ("h264", 30, 30),
            Media::H265B => ("h265", 25, 25),
            Media::H264Flash => ("h264", 15, 15),
        }
    }

    /// The file, generated with ffmpeg on first use (atomically, so parallel tests agree).
    /// B-frame media also get `FILE.pts`: each access unit's presentation time in frames,
    /// in decode order, which the server script stamps on the RTP packets.
    pub fn path(self) -> PathBuf {
        if matches!(self, Media::H264B | Media::H265B) {
            return self.bframe_path();
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-media");
        std::fs::create_dir_all(&dir).unwrap();
        let (codec, fps, gop) = self.params();
        let name = format!("{self:?}.{codec}");
        let out = dir.join(&name);
        if out.exists() {
            return out;
        }
        let (size, enc): (&str, Vec<String>) = match self {
            Media::H264Hd => ("1920x1080", x264(gop, "3M", &[])),
            Media::H264Slices => ("1280x720", x264(gop, "1500k", &["-slices", "4"])),
            Media::H264Small => ("640x360", x264(gop, "400k", &[])),
            Media::H264Flash => ("320x180", x264(gop, "200k", &[])),
            Media::H264B | Media::H265B => unreachable!("made by bframe_path"),
            Media::H265 => (
                "1280x720",
                ["-c:v", "libx265", "-preset", "ultrafast", "-b:v", "1M", "-x265-params"]
                    .iter()
                    .map(|s| s.to_string())
                    .chain([format!(
                        "keyint={gop}:min-keyint={gop}:bframes=0:scenecut=0:repeat-headers=1:log-level=error"
                    )])
                    .chain(["-bsf:v", "hevc_mp4toannexb", "-f", "hevc"].iter().map(|s| s.to_string()))
                    .collect(),
            ),
        };
        let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
        let source = match self {
            Media::H264Flash => format!(
                "color=c=black:size={size}:rate={fps},drawbox=w=iw:h=ih:color=white:t=fill:enable='lt(mod(t,1),0.05)'"
            ),
            _ => format!("testsrc2=size={size}:rate={fps}"),
        };
        let st = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(source)
            .args(["-t", "4", "-pix_fmt", "yuv420p"])
            .args(&enc)
            .arg(&tmp)
            .status()
            .expect("ffmpeg is required (the README test command installs it)");
        assert!(st.success(), "ffmpeg failed to make {name}");
        std::fs::rename(&tmp, &out).unwrap();
        out
    }
}

impl Media {
    /// A B-frame file: encoded to MP4 (which keeps presentation times), then copied out as
    /// Annex B with the times written beside it.
    fn bframe_path(self) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-media");
        std::fs::create_dir_all(&dir).unwrap();
        let (codec, fps, gop) = self.params();
        let name = format!("{self:?}.{codec}");
        let out = dir.join(&name);
        let pts_file = dir.join(format!("{name}.pts"));
        if out.exists() && pts_file.exists() {
            return out;
        }
        let g = gop.to_string();
        let (size, enc): (&str, Vec<&str>) = match self {
            Media::H264B => (
                "1280x720",
                vec!["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-b_strategy", "0", "-b:v", "1500k"],
            ),
            _ => (
                "640x360",
                vec![
                    "-c:v",
                    "libx265",
                    "-preset",
                    "ultrafast",
                    "-b:v",
                    "600k",
                    "-x265-params",
                    "bframes=2:b-adapt=0:open-gop=0:repeat-headers=1:log-level=error",
                ],
            ),
        };
        let tmp = dir.join(format!("{name}.{}.tmp.mp4", std::process::id()));
        let st = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={size}:rate={fps}"))
            .args(["-t", "4", "-pix_fmt", "yuv420p", "-g", &g, "-keyint_min", &g, "-sc_threshold", "0"])
            .args(&enc)
            .arg(&tmp)
            .status()
            .expect("ffmpeg is required (the README test command installs it)");
        assert!(st.success(), "ffmpeg failed to make {name}");
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0"])
            .arg(&tmp)
            .output()
            .unwrap();
        let pts: Vec<f64> =
            String::from_utf8_lossy(&probe.stdout).lines().filter_map(|l| l.split(',').next()?.parse().ok()).collect();
        let min = pts.iter().copied().fold(f64::MAX, f64::min);
        let frames: Vec<i64> = pts.iter().map(|p| ((p - min) * fps as f64).round() as i64).collect();
        assert!(frames.windows(2).any(|w| w[1] < w[0]), "{name} has no B-frames");
        let (bsf, fmt) = if codec == "h264" { ("h264_mp4toannexb", "h264") } else { ("hevc_mp4toannexb", "hevc") };
        let raw = dir.join(format!("{name}.{}.tmp", std::process::id()));
        let st = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&tmp)
            .args(["-c", "copy", "-bsf:v", bsf, "-f", fmt])
            .arg(&raw)
            .status()
            .unwrap();
        assert!(st.success());
        let lines: Vec<String> = frames.iter().map(|f| f.to_string()).collect();
        std::fs::write(&pts_file, lines.join("\n") + "\n").unwrap();
        std::fs::rename(&raw, &out).unwrap();
        let _ = std::fs::remove_file(&tmp);
        out
    }
}

fn x264(gop: u32, rate: &str, extra: &[&str]) -> Vec<String> {
    let g = gop.to_string();
    let mut v: Vec<&str> = vec![
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-bf",
        "0",
        "-b:v",
        rate,
        "-maxrate",
        rate,
        "-bufsize",
        rate,
        "-g",
        &g,
        "-keyint_min",
        &g,
        "-sc_threshold",
        "0",
    ];
    v.extend_from_slice(extra);
    v.extend_from_slice(&["-bsf:v", "h264_mp4toannexb", "-f", "h264"]);
    v.into_iter().map(String::from).collect()
}

pub use crate::common::free_port;

/// GStreamer's RTSP server, serving `mounts` on `port`.
pub struct RtspServer {
    child: Option<Child>,
    pub port: u16,
    mounts: Vec<(String, Media)>,
    /// Each mount's audio stream (`aac`, `pcmu`, `pcma`, `aac-stop`, ...; see the script), if any.
    audio: Vec<(String, String)>,
    /// Command prefix (e.g. `ip netns exec NS`) to run the server elsewhere.
    prefix: Vec<String>,
}

impl RtspServer {
    /// Starts a server on a free loopback port.
    pub fn start(mounts: &[(&str, Media)]) -> RtspServer {
        RtspServer::start_with(free_port(), mounts, &[])
    }

    /// Starts a server on `port`, its command run under `prefix`.
    pub fn start_with(port: u16, mounts: &[(&str, Media)], prefix: &[&str]) -> RtspServer {
        let mut s = RtspServer {
            child: None,
            port,
            mounts: mounts.iter().map(|(n, m)| (n.to_string(), *m)).collect(),
            audio: Vec::new(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
        };
        s.restart();
        s
    }

    /// Starts a server on a free loopback port whose mounts also send audio:
    /// `(mount, media, audio)`, audio as the script takes it (`""` for none).
    pub fn start_audio(mounts: &[(&str, Media, &str)]) -> RtspServer {
        let mut s = RtspServer {
            child: None,
            port: free_port(),
            mounts: mounts.iter().map(|(n, m, _)| (n.to_string(), *m)).collect(),
            audio: mounts
                .iter()
                .filter(|(_, _, a)| !a.is_empty())
                .map(|(n, _, a)| (n.to_string(), a.to_string()))
                .collect(),
            prefix: Vec::new(),
        };
        s.restart();
        s
    }

    /// (Re)starts the process and waits until it listens.
    pub fn restart(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rtsp_server.py");
        let mut argv: Vec<String> = self.prefix.clone();
        argv.extend(["/usr/bin/python3".to_string(), script.to_string(), self.port.to_string()]);
        for (name, m) in &self.mounts {
            let (codec, fps, _) = m.params();
            let audio = self.audio.iter().find(|(n, _)| n == name).map_or(String::new(), |(_, a)| format!(":{a}"));
            argv.push(format!("{name}={}:{codec}:{fps}{audio}", m.path().display()));
        }
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the RTSP server (needs python3-gi and gir1.2-gst-rtsp-server-1.0)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "RTSP server did not start");
        self.child = Some(child);
    }

    /// The URL of a mount, as seen from loopback (or `host`).
    pub fn url(&self, mount: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{mount}", self.port)
    }

    /// SIGKILL: the camera dies.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP / SIGCONT: the camera hangs / resumes.
    pub fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().expect("server running").id() as i32;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, sig) };
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // SAFETY: signalling our own child; SIGCONT first in case it was stopped.
            unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
        }
        self.kill();
    }
}

/// How a hostile server misbehaves.
#[derive(Copy, Clone, Debug)]
pub enum Hostile {
    /// Random bytes instead of RTSP, then close.
    Garbage,
    /// A 200 answer to DESCRIBE whose body is not SDP.
    BadSdp,
    /// A Content-Length of a terabyte, then a trickle of zeros.
    HugeLength,
    /// Accepts and never answers.
    Silent,
}

/// Starts a hostile server in a thread; returns its port. The thread lives as long as the
/// test process; each connection is handled in turn and closed.
pub fn start_hostile(mode: Hostile) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let mut req = [0u8; 4096];
            let n = c.read(&mut req).unwrap_or(0);
            let req = String::from_utf8_lossy(&req[..n]).into_owned();
            let cseq = req.lines().find_map(|l| l.strip_prefix("CSeq: ")).unwrap_or("1").trim().to_owned();
            let _ = match mode {
                Hostile::Garbage => {
                    let mut x = 0x12345678u32;
                    let junk: Vec<u8> = (0..65536)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 17;
                            x ^= x << 5;
                            x as u8
                        })
                        .collect();
                    c.write_all(&junk)
                }
                Hostile::BadSdp => {
                    let body = "this is not an SDP description\r\n";
                    c.write_all(
                        format!(
                            "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Base: rtsp://127.0.0.1:{port}/\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                }
                Hostile::HugeLength => {
                    let r = c.write_all(
                        format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\nContent-Length: 1000000000000\r\n\r\n")
                            .as_bytes(),
                    );
                    for _ in 0..200 {
                        if c.write_all(&[0u8; 65536]).is_err() {
                            break;
                        }
                    }
                    r
                }
                Hostile::Silent => {
                    std::thread::sleep(Duration::from_secs(20));
                    Ok(())
                }
            };
        }
    });
    port
}
