//! The arm64 VM harness (tests/vm/): the aarch64 binaries, a share holding them and a
//! `guest.sh`, and a boot that runs it. Shared by the VM tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// One VM at a time: two would fight over two cores and drop frames.
pub static VM: Mutex<()> = Mutex::new(());

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn cargo_aarch64(args: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(repo())
        .args(args)
        .args(["--target", "aarch64-unknown-linux-gnu", "--message-format=json"])
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "aarch64 build failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter_map(|m| m["executable"].as_str().map(String::from))
        .collect()
}

/// The aarch64 `edgenvr` binary.
pub fn edgenvr_aarch64() -> PathBuf {
    if let Ok(p) = std::env::var("EDGENVR_AARCH64_BIN") {
        return p.into();
    }
    let exes = cargo_aarch64(&["build", "--release", "--bin", "edgenvr"]);
    exes.into_iter().find(|e| e.ends_with("/edgenvr")).expect("the edgenvr binary").into()
}

/// The aarch64 unit-test binary (holds the M2M test that needs a real driver).
pub fn libtest_aarch64() -> PathBuf {
    if let Ok(p) = std::env::var("EDGENVR_AARCH64_LIBTEST") {
        return p.into();
    }
    let exes = cargo_aarch64(&["test", "--lib", "--no-run"]);
    exes.into_iter().next().expect("the lib test binary").into()
}

/// Prepares the VM (idempotent) and a fresh share holding `files` and `guest.sh`.
pub fn share(name: &str, files: &[(&Path, &str)], guest: &str) -> PathBuf {
    let out = Command::new(repo().join("tests/vm/setup.sh")).output().expect("tests/vm/setup.sh runs");
    assert!(out.status.success(), "VM setup failed: {}", String::from_utf8_lossy(&out.stderr));
    let dir = std::env::temp_dir().join(format!("edgenvr-vm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (src, dst) in files {
        std::fs::copy(src, dir.join(dst)).unwrap();
    }
    std::fs::write(dir.join("guest.sh"), guest).unwrap();
    dir
}

/// Boots the VM on `dir`; returns guest.sh's exit code and the console.
pub fn boot(dir: &Path, secs: u32) -> (i32, String) {
    let out = Command::new(repo().join("tests/vm/run.sh")).arg(dir).arg(secs.to_string()).output().unwrap();
    let console = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), console)
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
