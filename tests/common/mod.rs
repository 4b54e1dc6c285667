//! Shared harness for the black-box tests: runs the real `edgenvr` binary on real
//! filesystems and validates its output with real ffmpeg.

#![allow(dead_code)] // each test binary uses a different subset

use edgenvr::chunk::reader::ChunkReader;
use edgenvr::index::{ChunkRow, ChunkState, Index};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod http;
pub mod vm;

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_edgenvr")
}

/// The binary the hostile-client tests run: `EDGENVR_RELEASE_BIN` (scripts/test.sh builds
/// and sets the release build, as a board runs it) or else the binary under test.
pub fn release_bin() -> String {
    std::env::var("EDGENVR_RELEASE_BIN").ok().filter(|b| !b.trim().is_empty()).unwrap_or_else(|| bin().to_owned())
}

/// A `Command` running the binary under test. With `EDGENVR_TEST_RUNNER` set (e.g.
/// `qemu-aarch64-static -L /usr/aarch64-linux-gnu`, for tests of the aarch64 build on an
/// x86 machine without binfmt_misc), the binary runs under that runner.
pub fn edgenvr() -> Command {
    match std::env::var("EDGENVR_TEST_RUNNER").ok().filter(|r| !r.trim().is_empty()) {
        Some(r) => {
            let mut words = r.split_whitespace();
            let mut c = Command::new(words.next().expect("non-empty runner"));
            c.args(words).arg(bin());
            c
        }
        None => Command::new(bin()),
    }
}

/// Fails with a clear message unless the test runs as root (mounts need it; CI is root).
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "this test mounts filesystems and must run as root (the README test command does)"
    );
}

/// A running `edgenvr run`.
pub struct Service {
    pub child: Child,
    pub log: PathBuf,
}

impl Service {
    /// Starts `edgenvr run --config CONFIG`, logging to `dir/service-N.log`.
    pub fn start(config: &Path, dir: &Path) -> Service {
        Service::start_env(config, dir, &[])
    }

    /// [`Service::start`] with extra environment variables.
    pub fn start_env(config: &Path, dir: &Path, env: &[(&str, &str)]) -> Service {
        Service::start_opts(config, dir, edgenvr(), env, None)
    }

    /// [`Service::start`] of the binary `cmd` runs, with `env`, and with `nofile` (if set)
    /// as its descriptor limit (set in the child only: this process keeps its own).
    pub fn start_opts(
        config: &Path,
        dir: &Path,
        mut cmd: Command,
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> Service {
        let n = std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("service-"))
            .count();
        let log = dir.join(format!("service-{n}.log"));
        let f = std::fs::File::create(&log).unwrap();
        if let Some(limit) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
            unsafe {
                cmd.pre_exec(move || {
                    let l = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd
            .args(["run", "--config"])
            .arg(config)
            .args(["--log-level", "debug"])
            .current_dir(dir)
            .envs(env.iter().copied())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("start edgenvr");
        Service { child, log }
    }

    /// SIGINT and wait: a clean stop.
    pub fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let st =
            wait_timeout(&mut self.child, Duration::from_secs(20)).expect("edgenvr did not stop within 20 s of SIGINT");
        std::mem::forget(self);
        st
    }

    /// Waits for the process to exit by itself (after a signal the test sent).
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        let st = wait_timeout(&mut self.child, Duration::from_secs(20)).expect("edgenvr did not exit within 20 s");
        std::mem::forget(self);
        st
    }

    /// SIGKILL and reap: a crash.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::mem::forget(self);
    }

    /// The log so far, for assertion messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_timeout(c: &mut Child, d: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if let Some(st) = c.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Polls `f` every 100 ms until it returns `Some`, or panics with `what` after `d`.
pub fn wait_for<T>(d: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + d;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {d:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The chunk files of the given rows, in time order.
pub fn row_files(root: &Path, rows: &[&ChunkRow]) -> Vec<PathBuf> {
    rows.iter().map(|r| root.join(&r.rel_path)).collect()
}

/// Every row of the index at `path` (a second connection, as the service's WAL allows).
pub fn rows(index: &Path) -> Vec<ChunkRow> {
    let ix = Index::open(index).unwrap();
    let mut out = Vec::new();
    for st in [ChunkState::Open, ChunkState::Sealed, ChunkState::Deleting] {
        out.extend(ix.chunks_in_state(st).unwrap());
    }
    out.sort_by_key(|r| r.start_us);
    out
}

/// The rows of camera `cam` in the index `d/index.db`, in time order; none while the
/// service has not created the index.
pub fn camera_rows(d: &Path, cam: &str) -> Vec<ChunkRow> {
    if !d.join("index.db").exists() {
        return Vec::new();
    }
    rows(&d.join("index.db")).into_iter().filter(|r| r.camera == cam).collect()
}

/// Writes `d/edgenvr.toml` recording `cams` = (id, url) into `d/data` with its index at
/// `d/index.db`: `head` first (a `[server]` table, or nothing), a 1 s sync interval, and
/// short fault timers (5 s to the first frame, `frame_timeout` between frames), `extra`
/// added to every camera.
pub fn cameras_config(d: &Path, head: &str, cams: &[(&str, String)], frame_timeout: &str, extra: &str) -> PathBuf {
    let mut s = format!(
        "{head}[recording]\nsync_interval = \"1s\"\n[index]\npath = \"{}\"\n[[storage]]\npath = \"{}\"\n",
        d.join("index.db").display(),
        d.join("data").display()
    );
    for (id, url) in cams {
        s += &format!(
            "[[camera]]\nid = \"{id}\"\nurl = \"{url}\"\nfirst_frame_timeout = \"5s\"\nframe_timeout = \"{frame_timeout}\"\n{extra}"
        );
    }
    let p = d.join("edgenvr.toml");
    std::fs::write(&p, s).unwrap();
    p
}

/// The sealed rows of the index at `index`; none while the service has not created it.
pub fn sealed_rows(index: &Path) -> Vec<ChunkRow> {
    if !index.exists() {
        return Vec::new();
    }
    let ix = Index::open(index).unwrap();
    ix.chunks_in_state(ChunkState::Sealed).unwrap()
}

/// The chunk files under `root`, sorted.
pub fn chunk_files(root: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "chunk") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// Converts chunk files to one Annex B stream (start code before every NAL).
pub fn annex_b(files: &[PathBuf]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut nal = Vec::new();
    for f in files {
        let mut r = ChunkReader::open(f).unwrap();
        while r.next_into(&mut nal).unwrap_or_else(|e| panic!("{}: {e}", f.display())).is_some() {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(&nal);
        }
    }
    out
}

/// Decodes an MP4 file with ffmpeg; any decode error (or other error message) fails.
///
/// The encoder time base is the export's own 90 kHz: with ffmpeg's default (1/frame rate)
/// two frames of a stream whose clock is being slewed 1 % land in one tick and the null
/// muxer logs a non-monotonic DTS error about its own rounding, not about the file.
pub fn ffmpeg_decodes_mp4(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(path)
        .args(["-enc_time_base:v", "1/90000", "-f", "null", "-"])
        .output()
        .expect("ffmpeg is required (the README test command installs it)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}: ffmpeg reported errors: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Decodes an H.264 Annex B stream with ffmpeg (`-xerror`: any decode error fails) and
/// returns the number of frames ffprobe counts.
pub fn ffmpeg_decode(h264: &[u8], scratch: &Path) -> u64 {
    ffmpeg_decode_as(h264, scratch, "h264")
}

/// [`ffmpeg_decode`] for a given raw format (`h264` or `hevc`).
pub fn ffmpeg_decode_as(stream: &[u8], scratch: &Path, format: &str) -> u64 {
    let f = scratch.join(format!("check-{}.{format}", std::process::id()));
    std::fs::write(&f, stream).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-f", format, "-i"])
        .arg(&f)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg is required (the README test command installs it)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg reported errors: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-f",
            format,
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(&f)
        .output()
        .expect("ffprobe is required");
    assert!(out.status.success(), "ffprobe failed: {}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_file(&f);
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("ffprobe frame count")
}

/// A testsrc camera config for tests.
pub fn testsrc_camera(id: &str, speed: f64, bitrate: u32) -> String {
    format!(
        "[[camera]]\nid = \"{id}\"\nsource = \"testsrc\"\nwidth = 320\nheight = 240\nfps = 15\nbitrate = {bitrate}\nkeyframe_interval = 15\nspeed = {speed}\n"
    )
}

/// Runs a shell command, panicking with its output on failure.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A mount that is unmounted (lazily, so open files cannot block it) when dropped.
pub struct Mount(pub PathBuf);

/// Mounts a tmpfs of `bytes` at `dir/name` (a real small file system to fill, or a "USB
/// disk" to yank), unmounted when the returned guard drops.
pub fn tmpfs(dir: &Path, name: &str, bytes: u64) -> (Mount, PathBuf) {
    require_root();
    let mnt = dir.join(name);
    std::fs::create_dir(&mnt).unwrap();
    sh(&format!("mount -t tmpfs -o size={bytes} edgenvr-test {}", mnt.display()));
    (Mount(mnt.clone()), mnt)
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).stderr(Stdio::null()).status();
    }
}

/// Runs `edgenvr check` (optionally `--repair`) and returns (exit code, stdout).
pub fn check(config: &Path, repair: bool) -> (i32, String) {
    let mut c = edgenvr();
    c.args(["check", "--config"]).arg(config).args(["--log-level", "warn"]);
    if repair {
        c.arg("--repair");
    }
    let out = c.output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The state `src/http/player.html` shows in its `<pre id="state">` (error, readyState,
/// videoWidth, duration, currentTime) after headless Chromium played `url` for ten seconds
/// of virtual time, with a fresh profile under `profile`.
pub fn chromium_player_state(profile: &Path, url: &str) -> serde_json::Value {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| Path::new(p).exists());
    let chromium = chromium.expect("Chromium is required (the README test command installs Debian's chromium)");
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--no-first-run"])
        .args(["--autoplay-policy=no-user-gesture-required", "--virtual-time-budget=10000"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let state = dom.split("<pre id=\"state\">").nth(1).and_then(|s| s.split("</pre>").next()).unwrap_or("");
    serde_json::from_str(state).unwrap_or_else(|_| panic!("no player state in the page:\n{dom}"))
}

/// Exports camera `id` from half a second into its first chunk to half a second before the
/// end of its second (so across a minute boundary) with `edgenvr export`, checks that
/// ffmpeg decodes the MP4; returns its path and the range asked (µs).
pub fn export_across_boundary(d: &Path, cfg: &Path, id: &str, rows: &[ChunkRow]) -> (PathBuf, i64, i64) {
    let (from, to) = (rows[0].start_us + 500_000, rows[1].end_us - 500_000);
    let mp4 = d.join(format!("{id}.mp4"));
    let out = edgenvr()
        .args(["export", "--config", cfg.to_str().unwrap(), "--camera", id, "--log-level", "warn"])
        .args(["--from", &format!("{}", from as f64 / 1e6), "--to", &format!("{}", to as f64 / 1e6), "-o"])
        .arg(&mp4)
        .output()
        .unwrap();
    assert!(out.status.success(), "{id}: {}", String::from_utf8_lossy(&out.stderr));
    ffmpeg_decodes_mp4(&mp4);
    (mp4, from, to)
}
