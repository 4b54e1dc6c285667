#!/usr/bin/env bash
# Runs every edgenvr test, after installing what the tests need. Must run as root: the
# tests mount real filesystems (tmpfs, loop-mounted ext4) to fill and fail them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test

echo "== format, lints, docs"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings -D rustdoc::broken_intra_doc_links" cargo doc --locked --no-deps --quiet
# Every docs/ path cited in the code and the top-level notes must exist; so must the notes,
# and every src/ path they cite (files or directories).
notes=(ARCHITECTURE.md CHANGELOG.md CONTRIBUTING.md)
missing=0
for f in "${notes[@]}"; do
  [[ -f $f ]] || { echo "missing: $f"; missing=1; }
done
for f in $(grep -rhoE 'docs/[A-Za-z0-9_./-]+\.md' src tests "${notes[@]}" | sort -u); do
  [[ -f $f ]] || { echo "cited but missing: $f"; missing=1; }
done
for f in $(grep -hoE 'src/[A-Za-z0-9_./-]*[A-Za-z0-9_/]' "${notes[@]}" | sort -u); do
  [[ -e $f ]] || { echo "cited in the notes but missing: $f"; missing=1; }
done
((missing == 0))
# No two files may depend on each other, directly or around a loop.
python3 scripts/module-cycles.py
# No function over 80 lines outside tests, no file over 800 (how it measures: its doc).
python3 scripts/code-size.py

echo "== yocto layer"
scripts/check-yocto.sh

# The aarch64 binaries the arm64 VM test (tests/v4l2_vm.rs) runs on real V4L2 drivers,
# built once here so the test does not build them itself.
echo "== aarch64 build"
cargo build --locked --release --target aarch64-unknown-linux-gnu
EDGENVR_AARCH64_BIN=$PWD/target/aarch64-unknown-linux-gnu/release/edgenvr
EDGENVR_AARCH64_LIBTEST=$(cargo test --locked --target aarch64-unknown-linux-gnu --lib --no-run \
  --message-format=json 2>/dev/null | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | head -1)
[[ -x $EDGENVR_AARCH64_LIBTEST ]] || { echo "no aarch64 lib test binary"; exit 1; }
export EDGENVR_AARCH64_BIN EDGENVR_AARCH64_LIBTEST
tests/vm/setup.sh

# The test-only ONVIF camera of tests/onvif.rs (the onvif-server crate; its own Cargo.lock,
# not in the Yocto list), built here so its compile shows up on its own line.
echo "== test peers"
cargo build --locked --manifest-path tests/peers/onvif-device/Cargo.toml --target-dir target/peers

# The hostile-client tests (tests/http_hostile.rs) attack the release binary, as a board
# runs it (panic = "abort": a panic there ends all recording).
echo "== native release build"
cargo build --locked --release
export EDGENVR_RELEASE_BIN=$PWD/target/release/edgenvr

echo "== tests"
cargo test --locked --all-targets

# The cargo feature `tls` (the archive's https, MQTT over TLS): its code linted, and MQTT
# over TLS against Mosquitto's TLS listener (tests/mqtt_tls.rs).
echo "== feature tls"
cargo clippy --locked --features tls --all-targets -- -D warnings
cargo test --locked --features tls --test mqtt_tls

# The same code on the real target triple: unit tests and the black-box tests that need no
# kernel driver, run under qemu-aarch64 (user mode), so byte order, alignment and pointer
# width mistakes surface. Tests that pace openh264 far faster than real time (reaper_fs,
# http) stay native: under emulation they measure the emulator.
echo "== aarch64 under qemu-user"
export EDGENVR_TEST_RUNNER="qemu-aarch64-static -L /usr/aarch64-linux-gnu"
cargo test --locked --target aarch64-unknown-linux-gnu --lib --test boards --test crash_recovery \
  --test failover --test systemd --test rtsp --test cameras
unset EDGENVR_TEST_RUNNER
ls -l target/aarch64-unknown-linux-gnu/release/edgenvr
