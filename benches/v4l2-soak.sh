#!/usr/bin/env bash
# Memory and CPU of a V4L2 camera over time: the aarch64 edgenvr records vivid (640x480
# YUYV at 25 fps, openh264) inside the arm64 VM of tests/vm/ for MINUTES, sampling its RSS
# and CPU time every 30 s. The VM is emulated (TCG, 10-20x slower than a real core), so the
# CPU column is relative to this run only; the point is whether memory stays flat.
#   benches/v4l2-soak.sh [MINUTES]      # default 10
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
minutes=${1:-10}
"$here/scripts/install-deps.sh" aarch64 >/dev/null
cargo build --manifest-path "$here/Cargo.toml" --release --locked --quiet --target aarch64-unknown-linux-gnu
"$here/tests/vm/setup.sh" >/dev/null
share=$(mktemp -d)
trap 'rm -rf "$share"' EXIT
cp "$here/target/aarch64-unknown-linux-gnu/release/edgenvr" "$share/"
cat >"$share/guest.sh" <<GUEST
cat >/tmp/edgenvr.toml <<CFG
[[storage]]
path = "/tmp/rec"
[[camera]]
id = "cam"
device = "\$VIVID_DEV"
width = 640
height = 480
fps = 25
CFG
./edgenvr run --config /tmp/edgenvr.toml --log-level warn 2>run.log &
pid=\$!
hz=100
echo "| minute | RSS (kB) | CPU since start (s) | frames written | frames dropped before encoding |"
echo "|---|---|---|---|---|"
i=0
while [ \$i -lt $((minutes * 2)) ]; do
  sleep 30; i=\$((i + 1))
  rss=\$(grep VmRSS /proc/\$pid/status | tr -s ' ' | cut -d' ' -f2)
  set -- \$(cut -d' ' -f14,15 /proc/\$pid/stat)
  cpu=\$(( (\$1 + \$2) / hz ))
  st=\$(timeout 5 wget -q -O - http://127.0.0.1:8080/api/v1/status 2>/dev/null | tr ',' '\n')
  written=\$(echo "\$st" | grep '"frames"' | head -1 | cut -d: -f2)
  dropped=\$(echo "\$st" | grep '"frames_dropped"' | head -1 | cut -d: -f2)
  echo "| \$(awk "BEGIN{print \$i/2}") | \$rss | \$cpu | \$written | \$dropped |"
done
kill -TERM \$pid; wait \$pid
GUEST
VM_LOGLEVEL=1 "$here/tests/vm/run.sh" "$share" $((minutes * 60 + 120)) | grep '^|'
